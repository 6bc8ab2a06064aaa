"""The one reconcile step both front ends call: observe -> plan -> act -> status."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.aws.tasks import Task
from dask_aws.engine import costing, orphans, scheduler_api
from dask_aws.engine.act import Outcome, act
from dask_aws.engine.endpoints import endpoint
from dask_aws.engine.events import Event
from dask_aws.engine.memory import Memory
from dask_aws.engine.observe import Observed, observe
from dask_aws.engine.plan import Plan, Rollout, plan
from dask_aws.engine.report import EXPIRING, converged_status, error_status
from dask_aws.engine.resources import describe
from dask_aws.errors import DaskAwsError, PermanentError, from_botocore, unknown_region
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import ClusterStatus, ConditionType

REQUEUE_PROGRESS = 2.0  # while tasks start; ECS reports RUNNING within seconds to minutes
REQUEUE_ERROR = 15.0


@dataclass
class Result:
    status: ClusterStatus
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None  # None: converged, wait for the next change or resync
    error: DaskAwsError | None = None
    ensured: list[str] = field(default_factory=list)  # resources.RESOURCES keys created/repaired
    created: bool = False  # `ensured` was a first creation, not a repair of drift

    @property
    def ready(self) -> bool:
        return self.status.ready


def reconcile(
    aws: Aws,
    target: Target,
    *,
    generation: int | None = None,
    previous: ClusterStatus | None = None,
    desired_workers: int | None = None,
    retire_first: Collection[str] = (),
    memory: Memory | None = None,
    group_targets: Mapping[str, int] | None = None,
) -> Result:
    """Move AWS one step toward the spec. Safe to run again at any time, from any process.

    `desired_workers`: the default group's count (spec.workers.replicas when None);
    `group_targets`: named groups' counts where they differ from their replicas (an
    autoscaler's). `retire_first`: IPs of worker tasks to stop first when scaling down (see
    plan.plan). `memory`: the owner's previous step (memory.py); without it everything is
    read."""
    previous = previous or ClusterStatus()
    spec = target.spec
    desired = worker_targets(spec, desired_workers, group_targets)
    now = datetime.now(UTC)
    if not aws.known_region:
        return failed_result(unknown_region(aws.region), previous, generation)
    memory = memory or Memory()
    seen = memory.recall(target)
    clock = memory.clock() if seen is None else seen.at
    memory.forget()  # kept only if this step succeeds: an error may mean something is gone
    try:
        observed = observe(aws, target, seen)
        rollout = {name: _rollout(target, name, count) for name, count in desired.items()}
        steps = plan(observed, desired, now, retire_first=retire_first, rollout=rollout)
        if steps.rolling and steps.scheduler is not None:
            joined = _joined(aws, target, observed, steps.scheduler)
            if joined is not None:
                steps = plan(observed, desired, now, retire_first, rollout, joined)
        outcome = act(aws, target, observed, steps)
        status = converged_status(
            target, observed, steps, outcome, desired, generation, previous, now
        )
        outcome.events += _expiry_event(previous, status)
        status = _forget_unused(aws, target, previous, status, outcome)
        gone = {t.arn for t, _ in steps.stop} | {t.arn for t in steps.retire}
        rate = costing.hourly(
            target,
            aws.region,
            [t for t in observed.tasks if t.arn not in gone],
            outcome.started_by_group,
            outcome.started_scheduler is not None,
        )
        status = costing.with_cost(status, previous, rate, now)
        memory.remember(
            target,
            at=clock,
            network=observed.network,
            found=outcome.found,
            tasks=observed.tasks,
            started=[*outcome.started_workers, *filter(None, [outcome.started_scheduler])],
            now=now,
        )
    except (ClientError, BotoCoreError) as exc:
        return failed_result(from_botocore(exc, aws.identity, aws.region), previous, generation)
    except DaskAwsError as exc:
        return failed_result(exc, previous, generation)
    if steps.crash_loop is not None:
        component, verdict = steps.crash_loop
        stalled = PermanentError(
            "CrashLoop",
            f"{component} tasks stopped {verdict.failures} times in a row as they started, "
            f"so no more are started until the spec changes. The last one: {verdict.reason}",
        )
        failed = failed_result(stalled, status, generation)
        failed.events[:0] = outcome.events
        return failed
    if steps.backoff is not None and steps.retry_at is not None:
        component, verdict = steps.backoff
        message = (
            f"{component} tasks stopped {verdict.failures} time(s) as they started "
            f"({verdict.reason}); the next one starts at {steps.retry_at:%H:%M:%S} UTC"
        )
        status = status.model_copy(update={"message": message})
    result = Result(
        status=status,
        events=outcome.events,
        ensured=outcome.ensured,
        created=outcome.created,
    )
    if steps.retry_at is not None:
        result.requeue_after = max(REQUEUE_PROGRESS, (steps.retry_at - now).total_seconds())
    elif not result.ready:
        progressed = _progressed(previous, status, steps) and not outcome.failures
        result.requeue_after = memory.next_pause(progressed)
    return result


def worker_targets(
    spec: DaskAwsClusterSpec, default: int | None, groups: Mapping[str, int] | None
) -> dict[str, int]:
    """Each worker group's count by name ("" is spec.workers): `default` and `groups` where
    given (an autoscaler's), else the replicas the spec says; unknown names are dropped."""
    return {
        "": spec.workers.replicas if default is None else default,
        **{g.name: g.replicas for g in spec.worker_groups},
        **{k: v for k, v in (groups or {}).items() if k in spec.group_names},
    }


def _progressed(previous: ClusterStatus, status: ClusterStatus, steps: Plan) -> bool:
    """Whether this step started or stopped something, or saw a task change state. A step
    whose RunTask AWS refused (quota, capacity) has not: the retries slow down."""
    seen = (status.aws.scheduler_task_arn, status.workers, status.worker_groups, status.phase)
    return steps.mutates or seen != (
        previous.aws.scheduler_task_arn,
        previous.workers,
        previous.worker_groups,
        previous.phase,
    )


def _joined(aws: Aws, target: Target, observed: Observed, scheduler: Task) -> set[str] | None:
    """IPs of the workers the scheduler knows; None when it cannot say (then ECS's word)."""
    try:
        at = endpoint(aws, target.spec, scheduler.ip, observed.refs.tls_secret)
        return {scheduler_api.host_of(a) for a in scheduler_api.worker_addresses(at)}
    except scheduler_api.SchedulerUnreachable:
        return None


def _expiry_event(previous: ClusterStatus, status: ClusterStatus) -> list[Event]:
    """A Warning when the certificates start to expire soon; once, not every step."""
    ready, before = status.condition(ConditionType.READY), previous.condition(ConditionType.READY)
    if ready is None or ready.reason != EXPIRING or (before and before.reason == EXPIRING):
        return []
    expiry = ready.message.rsplit("; ", 1)[-1]
    return [Event("Warning", EXPIRING, expiry[0].upper() + expiry[1:] + ".")]


def _rollout(target: Target, group: str, desired: int) -> Rollout:
    budget = target.spec.worker_group(group).rollout
    default = Rollout.default(desired)
    surge = default.max_surge if budget.max_surge is None else budget.max_surge
    return Rollout(max_surge=surge, max_unavailable=budget.max_unavailable)


def _forget_unused(
    aws: Aws, target: Target, previous: ClusterStatus, status: ClusterStatus, outcome: Outcome
) -> ClusterStatus:
    """Records what this step created and removes what earlier ones created that the spec
    no longer uses; what cannot go yet stays recorded for the next step."""
    created = orphans.record(aws, outcome.found)
    unused = orphans.unused(previous.aws.created, created)
    removal = orphans.remove(aws, target, unused) if unused else orphans.Removal()
    if removal.removed:
        message = (
            f"Removed {describe(e.kind for e in removal.removed)}"
            f"{orphans.where(removal.removed)} that the spec no longer uses."
        )
        outcome.events.append(Event("Normal", "RemovedUnused", message))
    records = orphans.merge(removal.left, created)
    return status.model_copy(update={"aws": status.aws.model_copy(update={"created": records})})


def failed_result(error: DaskAwsError, previous: ClusterStatus, generation: int | None) -> Result:
    """The Result of a step that could not run: Stalled when only a spec change helps."""
    permanent = isinstance(error, PermanentError)
    return Result(
        status=error_status(previous, error, generation),
        events=[Event("Warning", error.reason, error.message)],
        requeue_after=None if permanent else REQUEUE_ERROR,
        error=error,
    )
