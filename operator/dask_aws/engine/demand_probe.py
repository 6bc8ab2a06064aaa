"""Runs inside the scheduler: the work it holds, counted by resource restriction.

scheduler_api.demand sends this module's *source* and the scheduler defines `probe` from
it with its own Python (see scheduler_api.probe_function): the scheduler image has no
dask_aws, and a pickled code object only loads on the very Python version that made it.
So this module imports nothing from dask_aws, uses syntax old Pythons know, and returns
plain lists and numbers (the reply crosses as msgpack, never pickle).
"""

from __future__ import annotations

from typing import Any


def probe(dask_scheduler: Any) -> dict[str, Any]:
    """{"target": adaptive target, "waiting": rows, "running": rows}; a row is
    [[[resource, amount], ...], tasks]. One snapshot: it runs on the scheduler's loop."""

    def restriction(ts: Any) -> tuple[tuple[str, float], ...]:
        wanted = ts.resource_restrictions or {}
        return tuple(sorted((str(r), float(a)) for r, a in wanted.items()))

    def rows(counts: dict[tuple[tuple[str, float], ...], int]) -> list[Any]:
        return [[[list(pair) for pair in key], n] for key, n in counts.items() if n]

    waiting: dict[tuple[tuple[str, float], ...], int] = {}
    # Queued tasks never have restrictions (Dask queues only root-ish tasks, and a task
    # with restrictions is never root-ish): count them without walking a long queue.
    waiting[()] = len(getattr(dask_scheduler, "queued", ()))
    # Tasks no worker can run now, e.g. GPU=1 while no worker offers GPU.
    for ts in dask_scheduler.unrunnable:
        key = restriction(ts)
        waiting[key] = waiting.get(key, 0) + 1

    # On a worker, running or next in its queue: Dask hands a worker restricted tasks as
    # long as it offers the amount at all, and the worker runs them as its amounts free up.
    running: dict[tuple[tuple[str, float], ...], int] = {}
    for ws in dask_scheduler.workers.values():
        for ts in ws.processing:
            key = restriction(ts)
            running[key] = running.get(key, 0) + 1

    return {
        "target": int(dask_scheduler.adaptive_target()),
        "waiting": rows(waiting),
        "running": rows(running),
    }
