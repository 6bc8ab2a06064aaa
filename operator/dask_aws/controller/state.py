"""What the operator remembers about one object between handler calls (kopf's memo)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dask_aws.controller.group_autoscaler import GroupTargets
from dask_aws.engine.memory import Memory

BACKOFF_BASE = 5.0
BACKOFF_CAP = 300.0


@dataclass
class ObjectState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_generation: int | None = None
    # When the next step is due (time.monotonic()): the engine's requeue_after while tasks
    # start, the error backoff, or the resync once Ready. The one schedule of this object.
    next_run: float = 0.0
    stalled_generation: int | None = None  # a permanent error at this generation: wait for a change
    failures: int = 0
    ready: bool = False
    # What the connection Secret was last written with: the scheduler's address and when
    # the certificates expire (new certificates, new Secret).
    connection_written: tuple[str, str | None] | None = None
    autoscale_target: int | None = None
    autoscale_changed_at: float = 0.0
    idled: bool = False
    groups: GroupTargets = field(default_factory=GroupTargets)  # with named worker groups
    clamped: str | None = None  # why a policy lowered the worker targets, last step
    problem: str | None = None  # the last error logged, so a recheck logs a change only
    deleted: bool = False  # the delete handler finished (AWS resources and Secret gone)
    # What the last step saw; its drift period is set from the config at the first step.
    memory: Memory = field(default_factory=Memory)

    def backoff(self) -> float:
        delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(self.failures, 10))
        self.failures += 1
        return delay

    def due(self, generation: int | None, now: float) -> bool:
        if generation != self.last_generation:
            return True  # a spec change is always worth a look, even when Stalled
        return self.stalled_generation != generation and now >= self.next_run


S = TypeVar("S")


def memo_state(memo: Any, key: str, kind: Callable[[], S]) -> S:
    """What the operator keeps for one object under `key` of its kopf memo, made at first."""
    state = memo.get(key)
    if state is None:
        state = memo[key] = kind()
    return state  # type: ignore[no-any-return]


def of(memo: Any) -> ObjectState:
    return memo_state(memo, "dask_aws_state", ObjectState)
