"""Plan: a pure function from (spec, observed AWS state) to the actions that close the gap.

No AWS calls here, so every decision can be tested on hand-made observations.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dask_aws.aws.found import Found
from dask_aws.aws.tasks import Task
from dask_aws.engine.observe import Observed

INFRA = (
    "cluster",
    "role:execution",
    "role:task",
    "security-group",
    "log-group",
    "td:scheduler",
    "td:worker",
)
RECENT = timedelta(minutes=10)


@dataclass
class Plan:
    ensure: list[str] = field(default_factory=list)  # INFRA keys, in dependency order
    stop: list[tuple[Task, str]] = field(default_factory=list)  # task, reason
    retire: list[Task] = field(default_factory=list)  # workers to retire, then stop
    run_scheduler: bool = False
    run_workers: int = 0
    replacing_workers: list[Task] = field(default_factory=list)  # stopped ones being replaced
    replacing_scheduler: Task | None = None
    scheduler: Task | None = None  # the scheduler the workers belong to, when running
    kept_workers: list[Task] = field(default_factory=list)  # live workers that stay

    @property
    def mutates(self) -> bool:
        return bool(
            self.ensure or self.stop or self.retire or self.run_scheduler or self.run_workers
        )


def _infra(observed: Observed) -> list[str]:
    found: dict[str, Found | None] = {
        "cluster": observed.cluster,
        "role:execution": observed.roles["execution"],
        "role:task": observed.roles["task"],
        "security-group": observed.security_groups[0] if observed.security_groups else None,
        "log-group": observed.log_group,
        "td:scheduler": observed.task_definitions["scheduler"],
        "td:worker": observed.task_definitions["worker"],
    }
    return [key for key in INFRA if (f := found[key]) is None or not f.in_sync]


def _current(task: Task, observed: Observed, ensure: list[str]) -> bool:
    key = f"td:{task.role}"
    definition = observed.task_definitions[task.role]
    return (
        key not in ensure and definition is not None and task.task_definition_arn == definition.id
    )


def _oldest_first(tasks: list[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: (t.started_at is None, t.started_at or datetime.max, t.arn))


def plan(
    observed: Observed,
    desired_workers: int,
    now: datetime | None = None,
    retire_first: Collection[str] = (),
) -> Plan:
    """`retire_first`: worker task IPs to pick first when there are too many workers (the
    Python front end's adaptive scaling has already retired exactly those through Dask)."""
    now = now or datetime.now(UTC)
    result = Plan(ensure=_infra(observed))
    live = [t for t in observed.tasks if t.live]
    schedulers = _oldest_first([t for t in live if t.role == "scheduler"])
    workers = [t for t in live if t.role == "worker"]

    # One scheduler: keep the oldest current one; stop any other (e.g. after a crash race).
    keep = next((s for s in schedulers if _current(s, observed, result.ensure)), None)
    for other in schedulers:
        if other is not keep:
            result.stop.append((other, "dask-aws: superseded scheduler"))
    if keep is None:
        result.run_scheduler = True
        lost = [t for t in observed.tasks if t.role == "scheduler" and not t.live]
        result.replacing_scheduler = schedulers[0] if schedulers else _newest(lost)
    # Workers follow their scheduler: those started for any other one are rolled over.
    mine = [w for w in workers if keep is not None and w.scheduler_task_id == keep.id]
    for worker in workers:
        if worker not in mine:
            result.stop.append((worker, "dask-aws: scheduler replaced"))
    if keep is None or not keep.running:
        return result  # workers start once the scheduler has an address
    result.scheduler = keep

    current = [w for w in mine if _current(w, observed, result.ensure)]
    outdated = [w for w in mine if w not in current]
    result.retire.extend(outdated)
    surplus = len(current) - desired_workers
    if surplus > 0:
        # Those named by the caller, then pending ones (they hold no data), then the newest.
        chosen = [t for t in current if t.ip is not None and t.ip in retire_first]
        rest = [t for t in current if t not in chosen]
        pending = [t for t in rest if not t.running]
        newest_running = list(reversed(_oldest_first([t for t in rest if t.running])))
        victims = (chosen + pending + newest_running)[:surplus]
        result.retire.extend(victims)
        current = [w for w in current if w not in victims]
    result.kept_workers = current
    result.run_workers = max(0, desired_workers - len(current))
    if result.run_workers:
        stopped = [
            t
            for t in observed.tasks
            if t.role == "worker"
            and not t.live
            and t.scheduler_task_id == keep.id
            and t.stop_code not in (None, "UserInitiated")
            and t.stopped_at is not None
            and now - t.stopped_at < RECENT
        ]
        result.replacing_workers = stopped[: result.run_workers]
    return result


def _newest(tasks: list[Task]) -> Task | None:
    ordered = _oldest_first(tasks)
    return ordered[-1] if ordered else None
