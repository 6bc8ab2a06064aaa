"""The engine: one idempotent reconcile step (observe -> plan -> act -> status) and deletion."""
