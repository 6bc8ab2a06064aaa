"""The one reconcile step both front ends call: observe -> plan -> act -> status."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.engine.act import act
from dask_aws.engine.events import Event
from dask_aws.engine.observe import observe
from dask_aws.engine.plan import plan
from dask_aws.engine.report import converged_status, error_status
from dask_aws.errors import DaskAwsError, PermanentError, translate
from dask_aws.status import ClusterStatus, ConditionType

REQUEUE_PROGRESS = 2.0  # while tasks start; ECS reports RUNNING within seconds to minutes
REQUEUE_ERROR = 15.0


@dataclass
class Result:
    status: ClusterStatus
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None  # None: converged, wait for the next change or resync
    error: DaskAwsError | None = None

    @property
    def ready(self) -> bool:
        return any(
            c.type is ConditionType.READY and c.status == "True" for c in self.status.conditions
        )


def reconcile(
    aws: Aws,
    target: Target,
    *,
    generation: int | None = None,
    previous: ClusterStatus | None = None,
    desired_workers: int | None = None,
    retire_first: Collection[str] = (),
) -> Result:
    """Move AWS one step toward the spec. Safe to run again at any time, from any process.

    `retire_first`: IPs of worker tasks to stop first when scaling down (see plan.plan)."""
    previous = previous or ClusterStatus()
    desired = target.spec.workers.replicas if desired_workers is None else desired_workers
    try:
        observed = observe(aws, target)
        steps = plan(observed, desired, retire_first=retire_first)
        outcome = act(aws, target, observed, steps)
        status = converged_status(target, observed, steps, outcome, desired, generation, previous)
    except ClientError as exc:
        return failed_result(translate(exc), previous, generation)
    except DaskAwsError as exc:
        return failed_result(exc, previous, generation)
    result = Result(status=status, events=outcome.events)
    if not result.ready:
        result.requeue_after = REQUEUE_PROGRESS
    return result


def failed_result(error: DaskAwsError, previous: ClusterStatus, generation: int | None) -> Result:
    """The Result of a step that could not run: Stalled when only a spec change helps."""
    permanent = isinstance(error, PermanentError)
    return Result(
        status=error_status(previous, error, generation),
        events=[Event("Warning", error.reason, error.message)],
        requeue_after=None if permanent else REQUEUE_ERROR,
        error=error,
    )
