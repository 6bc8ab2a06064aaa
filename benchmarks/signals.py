"""A benchmark stopped with SIGTERM cleans up as after Ctrl-C."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that `finally` and `with` blocks stop what the run
    started: Python's default (die at once) left the operator, which runs in a session of
    its own, running after `benchmarks.operator_scale` was stopped."""

    def exit_now(signum: int, frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, exit_now)
