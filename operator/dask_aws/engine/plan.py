"""Plan: a pure function from (spec, observed AWS state) to the actions that close the gap.

No AWS calls here, so every decision can be tested on hand-made observations.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dask_aws.aws.task_definitions import Component
from dask_aws.aws.tasks import Task
from dask_aws.engine import crashloop
from dask_aws.engine.observe import Observed
from dask_aws.engine.resources import RESOURCES, task_definition_key

RECENT = timedelta(minutes=10)


@dataclass
class Plan:
    ensure: list[str] = field(default_factory=list)  # resources.RESOURCES keys, in order
    stop: list[tuple[Task, str]] = field(default_factory=list)  # task, reason
    retire: list[Task] = field(default_factory=list)  # workers to retire, then stop
    run_scheduler: bool = False
    run_workers: int = 0
    replacing_workers: list[Task] = field(default_factory=list)  # stopped ones being replaced
    replacing_scheduler: Task | None = None
    scheduler: Task | None = None  # the scheduler the workers belong to, when running
    kept_workers: list[Task] = field(default_factory=list)  # live workers that stay
    outdated: list[Task] = field(default_factory=list)  # older-definition workers, still serving
    rolling: bool = False  # workers of an older definition were found
    # Launches held back because tasks of the current definition die as they start.
    crash_loop: tuple[Component, crashloop.Verdict] | None = None  # stalled: stop trying
    backoff: tuple[Component, crashloop.Verdict] | None = None  # the next launch is later

    @property
    def retry_at(self) -> datetime | None:
        return self.backoff[1].retry_at if self.backoff else None

    @property
    def mutates(self) -> bool:
        return bool(
            self.ensure or self.stop or self.retire or self.run_scheduler or self.run_workers
        )


def _infra(observed: Observed) -> list[str]:
    """What to create or repair: wanted rows (those observed) missing or out of sync."""
    return [
        r.key
        for r in RESOURCES
        if r.key in observed.found
        and ((found := observed.found[r.key]) is None or not found.in_sync)
    ]


def _current(task: Task, observed: Observed, ensure: list[str]) -> bool:
    definition = observed.task_definition(task.component)
    return (
        task_definition_key(task.component) not in ensure
        and definition is not None
        and task.task_definition_arn == definition.id
    )


def _oldest_first(tasks: list[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: (t.started_at is None, t.started_at or datetime.max, t.arn))


def plan(
    observed: Observed,
    desired_workers: int,
    now: datetime | None = None,
    retire_first: Collection[str] = (),
    rollout: Rollout | None = None,
    connected: Collection[str] | None = None,
) -> Plan:
    """`retire_first`: worker task IPs to pick first when there are too many workers (the
    Python front end's adaptive scaling has already retired exactly those through Dask).
    `rollout`: the budget for replacing workers of an older definition. `connected`: IPs
    of the workers the scheduler knows; while rolling, only those count as running (a
    task is RUNNING some seconds before its worker has joined)."""
    now = now or datetime.now(UTC)
    result = Plan(ensure=_infra(observed))
    live = [t for t in observed.tasks if t.live]
    schedulers = _oldest_first([t for t in live if t.component == "scheduler"])
    workers = [t for t in live if t.component == "worker"]

    # One scheduler: keep the oldest current one; stop any other (e.g. after a crash race).
    keep = next((s for s in schedulers if _current(s, observed, result.ensure)), None)
    for other in schedulers:
        if other is not keep:
            result.stop.append((other, "dask-aws: superseded scheduler"))
    if keep is None:
        lost = [t for t in observed.tasks if t.component == "scheduler" and not t.live]
        result.replacing_scheduler = schedulers[0] if schedulers else _newest(lost)
        schedulers_seen = [t for t in observed.tasks if t.component == "scheduler"]
        result.run_scheduler = _may_launch(result, observed, "scheduler", schedulers_seen, now)
    # Workers follow their scheduler: those started for any other one are rolled over.
    # Partitions, never `x in list` of tasks: plan() stays linear at thousands of workers.
    mine: list[Task] = []
    for worker in workers:
        if keep is not None and worker.scheduler_task_id == keep.id:
            mine.append(worker)
        else:
            result.stop.append((worker, "dask-aws: scheduler replaced"))
    if keep is None or not keep.running:
        return result  # workers start once the scheduler has an address
    result.scheduler = keep

    current: list[Task] = []
    outdated: list[Task] = []
    for worker in mine:
        (current if _current(worker, observed, result.ensure) else outdated).append(worker)
    surplus = len(current) - desired_workers
    if surplus > 0:
        # Those named by the caller, then pending ones (they hold no data), then the newest.
        named = set(retire_first)
        chosen = [t for t in current if t.ip is not None and t.ip in named]
        rest = [t for t in current if t.ip is None or t.ip not in named]
        pending = [t for t in rest if not t.running]
        newest_running = list(reversed(_oldest_first([t for t in rest if t.running])))
        victims = (chosen + pending + newest_running)[:surplus]
        result.retire.extend(victims)
        gone = {v.arn for v in victims}
        current = [w for w in current if w.arn not in gone]
    result.kept_workers = current
    result.rolling = bool(outdated)
    joined = set(connected) if connected is not None else None
    result.run_workers = _roll(result, current, outdated, desired_workers, rollout, joined)
    # Only workers of this scheduler: those of a lost one exit because it is gone.
    ours = [t for t in observed.tasks if t.component == "worker" and t.scheduler_task_id == keep.id]
    if result.run_workers and not _may_launch(result, observed, "worker", ours, now):
        result.run_workers = 0
    if result.run_workers:
        stopped = [
            t
            for t in observed.tasks
            if t.component == "worker"
            and not t.live
            and t.scheduler_task_id == keep.id
            and t.stop_code not in (None, "UserInitiated")
            and t.stopped_at is not None
            and now - t.stopped_at < RECENT
        ]
        result.replacing_workers = stopped[: result.run_workers]
    return result


@dataclass(frozen=True)
class Rollout:
    """How workers move to a new definition, as a Kubernetes Deployment's rolling update:
    at most `max_surge` workers above the desired count, at most `max_unavailable` below."""

    max_surge: int
    max_unavailable: int = 0

    @classmethod
    def default(cls, desired: int) -> Rollout:
        return cls(max_surge=max(1, -(-desired // 4)))  # 25 %, rounded up


def _roll(
    result: Plan,
    current: list[Task],
    outdated: list[Task],
    desired: int,
    rollout: Rollout | None,
    joined: set[str] | None,
) -> int:
    """Retires outdated workers only while enough others run (Dask moves their data to
    those), and starts replacements within the surge; returns how many to start."""
    budget = rollout or Rollout.default(desired)
    running = sum(1 for w in current if w.running and (joined is None or w.ip in joined))
    serving = _oldest_first([w for w in outdated if w.running])
    result.retire.extend(w for w in outdated if not w.running)  # they hold no data
    spare = max(0, running + len(serving) - (desired - budget.max_unavailable))
    result.retire.extend(serving[:spare])
    result.outdated = serving[spare:]
    room = desired + budget.max_surge - len(current) - len(result.outdated)
    return max(0, min(desired - len(current), room))


def _may_launch(
    result: Plan, observed: Observed, component: Component, tasks: list[Task], now: datetime
) -> bool:
    """False while the current definition's tasks keep dying as they start."""
    definition = observed.task_definition(component)
    if definition is None or task_definition_key(component) in result.ensure:
        return True  # a new definition has no failures yet
    verdict = crashloop.judge(tasks, definition.id, now)
    if verdict.stalled:
        result.crash_loop = (component, verdict)
        return False
    if verdict.retry_at is not None:
        if result.retry_at is None or verdict.retry_at < result.retry_at:
            result.backoff = (component, verdict)
        return False
    return True


def _newest(tasks: list[Task]) -> Task | None:
    ordered = _oldest_first(tasks)
    return ordered[-1] if ordered else None
