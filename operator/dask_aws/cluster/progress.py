"""What a person sees while a cluster starts: one line per change, with the elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable

from dask_aws.engine.reconcile import Result
from dask_aws.engine.resources import describe


class Progress:
    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._start = time.monotonic()
        self._last: str | None = None

    def say(self, text: str) -> None:
        self._emit(f"[{time.monotonic() - self._start:6.1f}s] {text}")

    def step(self, result: Result) -> None:
        if result.ensured:
            verb = "created" if result.created else "repaired"
            self.say(f"{verb} {describe(result.ensured)}")
        for event in result.events:
            if event.type == "Warning" and (
                result.error is None or event.message != result.error.message
            ):
                self.say(f"warning: {event.message}")
        status = result.status
        if result.error is not None:
            line = f"waiting: {result.error.message}"
        elif status.scheduler_address is None:
            line = "waiting for the scheduler task to start"
        else:
            workers = status.workers
            line = (
                f"scheduler running at {status.scheduler_address}; workers "
                f"{workers.running}/{workers.desired} running"
            )
            if workers.pending:
                line += f", {workers.pending} starting"
        if status.ready:
            line += " (ready)"
        if line != self._last:
            self._last = line
            self.say(line)
