"""Deleting what a Python cluster created, whatever way the process ends.

`Teardown` holds only the AWS clients and the target (never the cluster), and deletes with
the engine's `delete` in plain synchronous boto3 calls: no event loop is needed, so it
works from `close()`, from a garbage-collection finalizer, at interpreter exit
(`weakref.finalize` runs pending finalizers then) and from a SIGTERM/SIGHUP handler, even
after the cluster's IOLoop is gone. A hard kill (SIGKILL, power loss) is what
`dask-aws gc` is for.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.engine.delete import delete
from dask_aws.engine.orphans import KnownTasks
from dask_aws.errors import PermanentError
from dask_aws.status import CreatedResource

logger = logging.getLogger(__name__)
RETRY_DELAY = 2.0
SIGNALS = (signal.SIGTERM, signal.SIGHUP)

_LIVE: set[Teardown] = set()
_PREVIOUS: dict[int, Any] = {}
_INSTALL_LOCK = threading.Lock()


class TeardownError(RuntimeError):
    pass


class Teardown:
    """Idempotent deletion of one cluster's AWS resources."""

    def __init__(self, aws: Aws, target: Target, timeout: float, touched: bool = True) -> None:
        self.aws = aws
        self.target = target
        self.timeout = timeout
        # False until the first AWS change may have happened: nothing to delete before that.
        self.touched = touched
        # Held by the cluster's reconcile steps too, so nothing starts tasks during a delete.
        self.lock = threading.RLock()
        self.closing = False
        self.done = False
        # What the last step that succeeded had created (its status.aws.created): when set,
        # nothing else can exist, so deletion need not look for more. None: look.
        self.known: list[CreatedResource] | None = None
        # The live tasks that step knew (they are all, as only this process starts them):
        # stopped without a listing, once; a retry lists, in case the knowledge was wrong.
        self.tasks: KnownTasks | None = None
        # How many workers the scheduler has registered (None: unknown, the cluster is gone).
        # Fewer than the live worker tasks: some worker is still starting.
        self.registered_workers: Callable[[], int | None] = lambda: None
        _LIVE.add(self)

    def __call__(self) -> None:
        with self.lock:
            self.closing = True
            if not self.touched:
                self.done = True
            if self.done:
                _LIVE.discard(self)
                return
            deadline = time.monotonic() + self.timeout
            while True:
                known, tasks, self.tasks = self.known, self._ordered(self.tasks), None
                result = delete(
                    self.aws, self.target, known or (), discover=known is None, tasks=tasks
                )
                if result.done:
                    self.done = True
                    _LIVE.discard(self)
                    return
                error = result.error
                message = error.message if error else "not done"
                if isinstance(error, PermanentError) or time.monotonic() > deadline:
                    raise TeardownError(
                        f"could not delete all AWS resources of {self.target.owner.display} "
                        f"({message}); `dask-aws gc --yes` removes what is left"
                    )
                logger.info("deleting %s: %s", self.target.owner.display, message)
                time.sleep(RETRY_DELAY)

    def _ordered(self, tasks: KnownTasks | None) -> KnownTasks | None:
        """`tasks`, told to stop the scheduler after the workers when one may be starting."""
        if tasks is None or not tasks.workers:
            return tasks
        registered = self.registered_workers()
        if registered is not None and registered >= len(tasks.workers):
            return tasks  # all of them can say goodbye to a running scheduler
        return dataclasses.replace(tasks, workers_first=True)

    def quietly(self, why: str) -> None:
        """For finalizers and signal handlers: report instead of raising."""
        if self.done or not self.touched:
            self()  # marks it done without a word
            return
        print(
            f"dask-aws: deleting the AWS resources of {self.target.owner.display} ({why})",
            file=sys.stderr,
            flush=True,
        )
        try:
            self()
        except Exception as exc:
            print(f"dask-aws: {exc}", file=sys.stderr, flush=True)


def _finalize(teardown: Teardown) -> None:
    teardown.quietly("the cluster was garbage collected or the interpreter is exiting")


def register(cluster: object, teardown: Teardown) -> weakref.finalize:  # type: ignore[type-arg]
    """Run `teardown` when `cluster` is collected or at exit, and on SIGTERM/SIGHUP."""
    _install_signal_handlers()
    return weakref.finalize(cluster, _finalize, teardown)


def teardown_all(why: str) -> None:
    for teardown in list(_LIVE):
        teardown.quietly(why)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    teardown_all(f"received {signal.Signals(signum).name}")
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        # Die of the signal, as the default action would have.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may; atexit and finalizers still cover normal exits
    with _INSTALL_LOCK:
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if current is _on_signal or current == signal.SIG_IGN:
                continue  # ours already, or ignored on purpose (nohup): leave it so
            _PREVIOUS[signum] = current
            signal.signal(signum, _on_signal)
