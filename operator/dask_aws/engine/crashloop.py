"""Tasks that die as they start: back off, then stop launching and say why.

A spec that makes every task exit (a bad worker option, a port clash, a secret that
cannot be read) would otherwise start a new billed task every few seconds for ever.
Everything is judged from what ECS reports about recently stopped tasks, so it needs
no memory of its own and holds across operator restarts: a new task definition (the
spec changed) starts the count again, and so does a task that stayed up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dask_aws.aws.tasks import Task

# ECS keeps stopped tasks visible for about an hour; ten minutes is well inside that.
WINDOW = timedelta(minutes=10)
# A task that ran this long started fine; a later exit is a crash, not a start failure.
HEALTHY_AFTER = timedelta(seconds=60)
STALL_AFTER = 4  # failed starts of one definition in a row
# The first failure is retried at once (a task killed early is no crash loop); then 10 s,
# 20 s, ... up to MAX_DELAY.
FIRST_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(minutes=5)
START_FAILURES = ("TaskFailedToStart", "EssentialContainerExited")


@dataclass(frozen=True)
class Verdict:
    failures: int  # failed starts in a row, newest first counted
    reason: str | None  # the newest failure's own words
    retry_at: datetime | None  # not before then; None: launch now

    @property
    def stalled(self) -> bool:
        return self.failures >= STALL_AFTER


def _failed_start(task: Task) -> bool:
    if task.live or task.stop_code not in START_FAILURES or task.stopped_at is None:
        return False
    return task.started_at is None or task.stopped_at - task.started_at < HEALTHY_AFTER


def _healthy(task: Task, now: datetime) -> bool:
    if task.started_at is None:
        return False
    end = task.stopped_at if not task.live and task.stopped_at else now
    return end - task.started_at >= HEALTHY_AFTER


def reason_of(task: Task) -> str:
    words = task.stopped_reason or task.stop_code or "stopped"
    return f"{words} (exit code {task.exit_code})" if task.exit_code is not None else words


def judge(tasks: Iterable[Task], definition_arn: str, now: datetime) -> Verdict:
    """`tasks`: one component's tasks, live and stopped, as observed."""
    mine = [t for t in tasks if t.task_definition_arn == definition_arn]
    # A task of this definition that stayed up proves the definition can start.
    healthy = [t.started_at for t in mine if t.started_at is not None and _healthy(t, now)]
    since = max(healthy, default=now - WINDOW)
    failed = sorted(
        (t for t in mine if _failed_start(t) and t.stopped_at and t.stopped_at > since),
        key=lambda t: t.stopped_at or now,
        reverse=True,
    )
    if not failed:
        return Verdict(0, None, None)
    newest = failed[0]
    assert newest.stopped_at is not None
    retries = len(failed) - 1
    delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (retries - 1)) if retries else timedelta(0)
    retry_at = newest.stopped_at + delay
    return Verdict(len(failed), reason_of(newest), retry_at if retry_at > now else None)
