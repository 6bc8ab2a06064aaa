"""Act: carry out a plan. Each call is safe to repeat; a crash between calls is healed by
the next observe, because every resource is found again by name, tag or startedBy."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dask_aws.aws import security_group
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.task_definitions import Component
from dask_aws.engine import scheduler_api
from dask_aws.engine.endpoints import endpoint
from dask_aws.engine.events import Event
from dask_aws.engine.observe import Observed
from dask_aws.engine.plan import Plan, what
from dask_aws.engine.resources import describe, lookup, rows, task_definition_key
from dask_aws.spec import Capacity

# What the scheduler's task definition is made of: a change to any of these replaces the
# scheduler (and so every worker); workers.* alone rolls the workers, data kept.
SCHEDULER_FIELDS = "image, scheduler, secrets, logs, iam, network, launchType"

# RunTask failure reasons that mean "not now, not this many": an account quota or capacity
# AWS lacks (ECS developer guide, "API failure reasons"). Tasks that fit still start; the
# rest are tried again by the next steps, at their usual pace. Each with what it is about.
CAPACITY_REASONS = (
    ("limit on the number of vCPUs", "Fargate vCPU quota"),
    ("limit on the number of tasks", "concurrent tasks quota"),
    ("Capacity is unavailable", "no capacity in the subnets' availability zones"),
    ("RESOURCE:", "the cluster's instances lack the resource"),
)


def capacity_reason(failure: str) -> str | None:
    """The AWS reason of a RunTask failure (an `RunResult.failures` entry, "[arn ]reason")
    that a quota or missing capacity explains, with what it is about; None for others."""
    for marker, about in CAPACITY_REASONS:
        if marker in failure:
            # The reason is the failure's last word(s); an ARN, when AWS names one, comes first.
            head, _, tail = failure.partition(" ")
            reason = tail if head.startswith("arn:") and tail else failure
            return f"{reason} ({about})"
    return None


@dataclass
class Outcome:
    found: dict[str, Found | None] = field(default_factory=dict)  # after this step's ensures
    security_groups: list[str] = field(default_factory=list)
    ensured: list[str] = field(default_factory=list)  # resources.RESOURCES keys, in order
    created: bool = False  # `ensured` is a first creation, not drift repaired
    started_workers: list[str] = field(default_factory=list)
    started_by_group: dict[str, int] = field(default_factory=dict)
    started_scheduler: str | None = None
    retired: int = 0
    retire_fallback: str | None = None
    failures: list[str] = field(default_factory=list)
    # Tasks RunTask refused for a quota or capacity, by what (the scheduler, the workers,
    # a worker group: `what()`) and capacity_reason.
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def add_failures(self, component: Component, failures: list[str], group: str = "") -> None:
        self.failures.extend(failures)
        for failure in failures:
            reason = capacity_reason(failure)
            if reason is not None:
                key = (what(component, group), reason)
                self.refused[key] = self.refused.get(key, 0) + 1

    @property
    def cluster_arn(self) -> str | None:
        cluster = self.found.get("cluster")
        return cluster.id if cluster else None

    def task_definition(self, component: Component, group: str = "") -> str | None:
        found = self.found.get(task_definition_key(component, group))
        return found.id if found else None


def _ensure_infra(aws: Aws, target: Target, observed: Observed, plan: Plan, out: Outcome) -> None:
    out.found = dict(observed.found)
    place = observed.place
    for key in plan.ensure:
        # Trust our own writes: what ensure returns is not read back in this step.
        row = lookup(key)
        assert row is not None  # plan.ensure holds keys of rows(target)
        out.found[key] = row.ensure(aws, target, place)
        place = row.place_after(place, out.found[key])
    out.ensured = list(plan.ensure)
    out.security_groups = security_group.ids(target, out.found.get("security-group"))
    if plan.ensure:
        # Everything missing at once is a first creation; anything less is drift repaired.
        out.created = observed.cluster is None or len(plan.ensure) == len(rows(target))
        if out.created:
            event = Event("Normal", "Created", f"Created {describe(plan.ensure)}.")
        else:
            repaired = f"Repaired {describe(plan.ensure)} to match the spec."
            event = Event("Normal", "Repaired", repaired)
        out.events.append(event)


def _retire(aws: Aws, target: Target, plan: Plan, cluster_arn: str, out: Outcome) -> None:
    victims = plan.retire
    scheduler = plan.scheduler
    if not victims:
        return
    if scheduler is not None and any(v.running for v in victims):
        hosts = {v.ip for v in victims if v.running}
        try:
            secret = out.found.get("tls-secret")
            at = endpoint(aws, target.spec, scheduler.ip, secret.id if secret else None)
            addresses = [
                a for a in scheduler_api.worker_addresses(at) if scheduler_api.host_of(a) in hosts
            ]
            scheduler_api.retire_workers(at, addresses)
            out.retired = len(addresses)
        except scheduler_api.SchedulerUnreachable as exc:
            out.retire_fallback = (
                f"Could not retire {len(hosts)} worker(s) gracefully through the scheduler "
                f"({exc}); stopped their tasks directly, so data they held may be recomputed."
            )
            out.events.append(Event("Warning", "RetireFallback", out.retire_fallback))
    ecs_tasks.stop(aws, cluster_arn, [v.arn for v in victims], "dask-aws: scaled down")
    out.events.append(
        Event(
            "Normal",
            "ScaledDown",
            f"Stopped {len(victims)} worker task(s){_by_group(victims)}; {out.retired} of them "
            "were retired through the scheduler first, so their data moved to other workers.",
        )
    )


def _by_group(tasks: list[ecs_tasks.Task]) -> str:
    """' (2 of worker group spot)' for the named groups among `tasks`."""
    counts = Counter(t.group for t in tasks if t.group)
    parts = [f"{n} of worker group {g}" for g, n in sorted(counts.items())]
    return f" ({', '.join(parts)})" if parts else ""


def _of(group: str) -> str:
    """' of worker group NAME' for Events about a named group, '' for spec.workers."""
    return f" of worker group {group}" if group else ""


def _run_workers(
    aws: Aws, target: Target, observed: Observed, plan: Plan, group: str, out: Outcome
) -> None:
    assert out.cluster_arn is not None
    shape = target.spec.worker_group(group)
    cluster_arn, definition = out.cluster_arn, out.task_definition("worker", group)
    assert definition is not None
    wanted = plan.groups[group].run
    capacity = shape.capacity_of

    def run(count: int, spot: bool) -> ecs_tasks.RunResult:
        return ecs_tasks.run(
            aws,
            target,
            cluster_arn,
            definition,
            "worker",
            count,
            observed.network,
            out.security_groups,
            scheduler=plan.workers_for,
            spot=spot,
            group=group,
        )

    spot = capacity is not Capacity.ON_DEMAND
    result = run(wanted, spot)
    on_spot = len(result.started) if spot else 0
    missing = wanted - len(result.started)
    if missing and capacity is Capacity.SPOT_WITH_FALLBACK:
        out.events.append(
            Event(
                "Warning",
                "SpotFallback",
                f"FARGATE_SPOT started {len(result.started)} of {wanted} workers{_of(group)} "
                f"({'; '.join(result.failures)[:300]}); starting {missing} on demand instead.",
            )
        )
        extra = run(missing, False)
        result = ecs_tasks.RunResult(result.started + extra.started, extra.failures)
    out.started_workers.extend(result.started)
    out.started_by_group[group] = len(result.started)
    out.add_failures("worker", result.failures, group)
    if not result.started:
        return
    replaced = plan.groups[group].replacing[: len(result.started)]
    if replaced:
        reasons = sorted({t.stopped_reason or t.stop_code or "stopped" for t in replaced})
        out.events.append(
            Event(
                "Warning",
                "WorkerReplaced",
                f"Replacing {len(replaced)} stopped worker task(s){_of(group)}: "
                f"{'; '.join(reasons)[:400]}.",
            )
        )
    where = ""
    if spot:
        on_demand = len(result.started) - on_spot
        where = f" ({on_spot} on Fargate Spot, {on_demand} on demand)"
    out.events.append(
        Event(
            "Normal",
            "WorkersStarted",
            f"Started {len(result.started)} worker task(s){_of(group)}{where}.",
        )
    )


def act(aws: Aws, target: Target, observed: Observed, plan: Plan) -> Outcome:
    out = Outcome()
    _ensure_infra(aws, target, observed, plan, out)
    if out.cluster_arn is None:
        return out
    stops: dict[str, list[str]] = {}
    for task, reason in plan.stop:
        stops.setdefault(reason, []).append(task.arn)
    for reason, arns in stops.items():
        ecs_tasks.stop(aws, out.cluster_arn, arns, reason)
    _retire(aws, target, plan, out.cluster_arn, out)
    scheduler_definition = out.task_definition("scheduler")
    if plan.run_scheduler and scheduler_definition is not None:
        result = ecs_tasks.run(
            aws,
            target,
            out.cluster_arn,
            scheduler_definition,
            "scheduler",
            1,
            observed.network,
            out.security_groups,
        )
        out.add_failures("scheduler", result.failures)
        out.started_scheduler = result.started[0] if result.started else None
        if plan.replacing_scheduler is not None and out.started_scheduler:
            lost = plan.replacing_scheduler
            why = (
                f"it stopped: {lost.stopped_reason or lost.stop_code or 'unknown reason'}"
                if not lost.live
                else f"the spec changed what it runs with ({SCHEDULER_FIELDS})"
            )
            out.events.append(
                Event(
                    "Warning",
                    "SchedulerReplaced",
                    f"Replaced scheduler task {lost.id} because {why}; its workers start "
                    "over on the new scheduler, so data held in the cluster is recomputed.",
                )
            )
    for group, planned in plan.groups.items():
        if planned.run:
            _run_workers(aws, target, observed, plan, group, out)
    return out
