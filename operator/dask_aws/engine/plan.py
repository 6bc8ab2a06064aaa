"""Plan: a pure function from (spec, observed AWS state) to the actions that close the gap.

No AWS calls here, so every decision can be tested on hand-made observations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dask_aws.aws.task_definitions import Component
from dask_aws.aws.tasks import Task
from dask_aws.engine import crashloop
from dask_aws.engine.observe import Observed
from dask_aws.engine.resources import task_definition_key

RECENT = timedelta(minutes=10)


@dataclass
class GroupPlan:
    """What happens to one worker group's tasks ("" is spec.workers)."""

    desired: int = 0
    run: int = 0  # how many to start
    replacing: list[Task] = field(default_factory=list)  # stopped ones being replaced
    kept: list[Task] = field(default_factory=list)  # live workers that stay
    outdated: list[Task] = field(default_factory=list)  # older-definition workers, still serving
    rolling: bool = False  # workers of an older definition were found
    interrupted: list[Task] = field(default_factory=list)  # Spot interruptions under way


@dataclass
class Plan:
    ensure: list[str] = field(default_factory=list)  # resources.rows() keys, in order
    stop: list[tuple[Task, str]] = field(default_factory=list)  # task, reason
    retire: list[Task] = field(default_factory=list)  # workers to retire, then stop
    run_scheduler: bool = False
    replacing_scheduler: Task | None = None
    scheduler: Task | None = None  # the scheduler the workers belong to, when running
    # The scheduler new workers are started for: the running one, or a first one still
    # starting whose address is known, so that both Fargate starts overlap.
    workers_for: Task | None = None
    groups: dict[str, GroupPlan] = field(default_factory=dict)  # by worker group name
    # Launches held back because tasks of the current definition die as they start: what
    # (the scheduler, the workers, a worker group) and the verdict.
    crash_loop: tuple[str, crashloop.Verdict] | None = None  # stalled: stop trying
    backoff: tuple[str, crashloop.Verdict] | None = None  # the next launch is later

    @property
    def retry_at(self) -> datetime | None:
        return self.backoff[1].retry_at if self.backoff else None

    @property
    def run_workers(self) -> int:
        return sum(g.run for g in self.groups.values())

    @property
    def kept_workers(self) -> list[Task]:
        return [t for g in self.groups.values() for t in g.kept]

    @property
    def outdated(self) -> list[Task]:
        return [t for g in self.groups.values() for t in g.outdated]

    @property
    def replacing_workers(self) -> list[Task]:
        return [t for g in self.groups.values() for t in g.replacing]

    @property
    def rolling(self) -> bool:
        return any(g.rolling for g in self.groups.values())

    @property
    def mutates(self) -> bool:
        return bool(
            self.ensure or self.stop or self.retire or self.run_scheduler or self.run_workers
        )


def _infra(observed: Observed) -> list[str]:
    """What to create or repair: wanted rows (those observed) missing or out of sync."""
    return [key for key, found in observed.found.items() if found is None or not found.in_sync]


def _current(task: Task, observed: Observed, ensure: list[str]) -> bool:
    definition = observed.task_definition(task.component, task.group)
    return (
        task_definition_key(task.component, task.group) not in ensure
        and definition is not None
        and task.task_definition_arn == definition.id
    )


def what(component: Component, group: str = "") -> str:
    """How status and Events name a component: scheduler, worker, or worker group NAME."""
    return f"worker group {group}" if group else component


def _oldest_first(tasks: list[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: (t.started_at is None, t.started_at or datetime.max, t.arn))


def plan(
    observed: Observed,
    desired_workers: int | Mapping[str, int],
    now: datetime | None = None,
    retire_first: Collection[str] = (),
    rollout: Rollout | Mapping[str, Rollout] | None = None,
    connected: Collection[str] | None = None,
) -> Plan:
    """`desired_workers`: the default group's count, or the count of each worker group by
    name ("" is spec.workers; a group left out wants none). `retire_first`: worker task IPs
    to pick first when there are too many workers (the Python front end's adaptive scaling
    has already retired exactly those through Dask). `rollout`: the budget for replacing
    workers of an older definition (per group, or one for all). `connected`: IPs of the
    workers the scheduler knows; while rolling, only those count as running (a task is
    RUNNING some seconds before its worker has joined)."""
    now = now or datetime.now(UTC)
    desired = {"": desired_workers} if isinstance(desired_workers, int) else dict(desired_workers)
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
        result.run_scheduler = _may_launch(result, observed, "scheduler", "", schedulers_seen, now)
    # Workers follow their scheduler: those started for any other one are rolled over, and
    # so are those of a group the spec no longer has. Partitions, never `x in list` of
    # tasks: plan() stays linear at thousands of workers.
    mine: dict[str, list[Task]] = {name: [] for name in desired}
    for worker in workers:
        if keep is None or worker.scheduler_task_id != keep.id:
            result.stop.append((worker, "dask-aws: scheduler replaced"))
        elif worker.group not in mine:
            result.stop.append((worker, "dask-aws: worker group removed from the spec"))
        else:
            mine[worker.group].append(worker)
    # Workers need the scheduler's address, which its task has once its network interface is
    # attached (PENDING: the image is still being pulled). They start then and find it
    # listening when their own start is over, instead of waiting for it to run first. After
    # a scheduler failed to start, a new one must run first: workers started for each
    # attempt of a crash loop would be paid for nothing.
    failed_before = any(t.component == "scheduler" and not t.live for t in observed.tasks)
    if keep is None or keep.ip is None or (failed_before and not keep.running):
        return result
    result.scheduler = keep if keep.running else None
    result.workers_for = keep
    joined = set(connected) if connected is not None else None
    ours: dict[str, list[Task]] = {name: [] for name in desired}
    for t in observed.tasks:
        if t.component == "worker" and t.scheduler_task_id == keep.id and t.group in ours:
            ours[t.group].append(t)
    for name, count in desired.items():
        budget = rollout.get(name) if isinstance(rollout, Mapping) else rollout
        group = _plan_group(result, observed, name, count, mine[name], retire_first)
        group.run = _roll(result, group, budget, joined)
        # Only workers of this scheduler: those of a lost one exit because it is gone.
        if group.run and not _may_launch(result, observed, "worker", name, ours[name], now):
            group.run = 0
        if group.run:
            group.replacing = _replaced(ours[name], now)[: group.run]
        group.interrupted = [t for t in ours[name] if t.interrupted]
        result.groups[name] = group
    return result


def _plan_group(
    result: Plan,
    observed: Observed,
    name: str,
    desired: int,
    workers: list[Task],
    retire_first: Collection[str],
) -> GroupPlan:
    """The group's current workers, minus the surplus (added to result.retire)."""
    group = GroupPlan(desired=desired)
    current: list[Task] = []
    for worker in workers:
        (current if _current(worker, observed, result.ensure) else group.outdated).append(worker)
    surplus = len(current) - desired
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
    group.kept = current
    group.rolling = bool(group.outdated)
    return group


def _replaced(tasks: list[Task], now: datetime) -> list[Task]:
    """Workers that stopped (or are being stopped by a Spot interruption) recently for a
    reason other than ours: the ones a new worker replaces, for the Event."""
    return [
        t
        for t in tasks
        if not t.live
        and t.stop_code not in (None, "UserInitiated")
        and now - (t.stopped_at or now) < RECENT
    ]


@dataclass(frozen=True)
class Rollout:
    """How workers move to a new definition, as a Kubernetes Deployment's rolling update:
    at most `max_surge` workers above the desired count, at most `max_unavailable` below."""

    max_surge: int
    max_unavailable: int = 0

    @classmethod
    def default(cls, desired: int) -> Rollout:
        return cls(max_surge=max(1, -(-desired // 4)))  # 25 %, rounded up


def _roll(result: Plan, group: GroupPlan, rollout: Rollout | None, joined: set[str] | None) -> int:
    """Retires outdated workers only while enough others run (Dask moves their data to
    those), and starts replacements within the surge; returns how many to start."""
    desired, current, outdated = group.desired, group.kept, group.outdated
    budget = rollout or Rollout.default(desired)
    running = sum(1 for w in current if w.running and (joined is None or w.ip in joined))
    serving = _oldest_first([w for w in outdated if w.running])
    result.retire.extend(w for w in outdated if not w.running)  # they hold no data
    spare = max(0, running + len(serving) - (desired - budget.max_unavailable))
    result.retire.extend(serving[:spare])
    group.outdated = serving[spare:]
    room = desired + budget.max_surge - len(current) - len(group.outdated)
    return max(0, min(desired - len(current), room))


def _may_launch(
    result: Plan,
    observed: Observed,
    component: Component,
    group: str,
    tasks: list[Task],
    now: datetime,
) -> bool:
    """False while the current definition's tasks keep dying as they start."""
    definition = observed.task_definition(component, group)
    if definition is None or task_definition_key(component, group) in result.ensure:
        return True  # a new definition has no failures yet
    verdict = crashloop.judge(tasks, definition.id, now)
    if verdict.stalled:
        result.crash_loop = (what(component, group), verdict)
        return False
    if verdict.retry_at is not None:
        if result.retry_at is None or verdict.retry_at < result.retry_at:
            result.backoff = (what(component, group), verdict)
        return False
    return True


def _newest(tasks: list[Task]) -> Task | None:
    ordered = _oldest_first(tasks)
    return ordered[-1] if ordered else None
