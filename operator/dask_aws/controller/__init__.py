"""The Kubernetes operator: thin kopf handlers over the engine."""
