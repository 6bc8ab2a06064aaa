"""Status: what the step saw and did, in Kubernetes conventions (Ready/Reconciling/Stalled)."""

from __future__ import annotations

from datetime import UTC, datetime

from dask_aws import certs
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import comm_address, dashboard_url
from dask_aws.engine.act import SCHEDULER_FIELDS, Outcome
from dask_aws.engine.observe import Observed
from dask_aws.engine.plan import Plan
from dask_aws.errors import DaskAwsError, PermanentError
from dask_aws.status import (
    AwsStatus,
    ClusterStatus,
    Condition,
    ConditionType,
    Phase,
    TlsStatus,
    WorkerCounts,
    set_condition,
)

EXPIRING = "CertificateExpiring"  # the Ready condition's reason, and the Event's


def _conditions(
    previous: ClusterStatus,
    generation: int | None,
    ready: tuple[bool, str, str],
    reconciling: tuple[bool, str, str],
    stalled: tuple[bool, str, str],
) -> list[Condition]:
    conditions = list(previous.conditions)
    for type_, (flag, reason, message) in (
        (ConditionType.READY, ready),
        (ConditionType.RECONCILING, reconciling),
        (ConditionType.STALLED, stalled),
    ):
        conditions = set_condition(conditions, type_, flag, reason, message, generation)
    return conditions


def converged_status(
    target: Target,
    observed: Observed,
    plan: Plan,
    out: Outcome,
    desired: int,
    generation: int | None,
    previous: ClusterStatus,
    now: datetime | None = None,
) -> ClusterStatus:
    spec = target.spec
    scheduler = plan.scheduler
    running = sum(1 for w in plan.kept_workers if w.running)
    pending = sum(1 for w in plan.kept_workers if not w.running) + len(out.started_workers)
    ready = scheduler is not None and running == desired and not plan.mutates and not plan.outdated
    replacing = plan.replacing_scheduler
    if scheduler is None and replacing is not None and replacing.live:
        phase = Phase.DEGRADED
        why = (
            "SchedulerReplaced",
            f"the spec changed what the scheduler runs with ({SCHEDULER_FIELDS}); a new "
            "scheduler is starting and the workers follow it",
        )
    elif scheduler is None:
        phase = Phase.DEGRADED if replacing is not None else Phase.CREATING
        why = ("SchedulerStarting", "waiting for the scheduler task to run")
    elif ready:
        phase = Phase.RUNNING
        why = ("Running", f"scheduler running, {running}/{desired} workers")
    elif plan.outdated:
        phase = Phase.SCALING
        why = (
            "RollingUpdate",
            f"{running}/{desired} workers run the new spec, {pending} starting; "
            f"{len(plan.outdated)} on the previous one keep serving until they are replaced",
        )
    else:
        phase = Phase.SCALING
        why = ("Scaling", f"{running}/{desired} workers running, {pending} starting")
    message = out.retire_fallback or ("; ".join(out.failures) if out.failures else None)
    address = comm_address(spec, scheduler.ip) if scheduler else None
    dashboard = dashboard_url(spec, scheduler.ip) if scheduler else None
    secret = out.found.get("tls-secret")
    expiring = certs.expiry_warning(
        secret.expires if secret else None, spec.tls.validity_days, now or datetime.now(UTC)
    )
    if ready and expiring:
        why = (EXPIRING, f"{why[1]}; {expiring}")
    return ClusterStatus(
        phase=phase,
        conditions=_conditions(
            previous,
            generation,
            ready=(True, why[0], why[1]) if ready else (False, why[0], why[1]),
            reconciling=(False, "Converged", why[1]) if ready else (True, why[0], why[1]),
            stalled=(False, "NoError", ""),
        ),
        observed_generation=generation,
        scheduler_address=address,
        dashboard_address=dashboard,
        replicas=running,
        workers=WorkerCounts(desired=desired, running=running, pending=pending),
        aws=AwsStatus(
            cluster_arn=out.cluster_arn,
            execution_role_arn=observed.refs.execution_role_arn,
            task_role_arn=observed.refs.task_role_arn,
            security_group_id=out.security_groups[0] if out.security_groups else None,
            log_group=observed.refs.log_group,
            tls_secret_arn=secret.id if secret else None,
            scheduler_task_definition_arn=out.task_definition("scheduler"),
            worker_task_definition_arn=out.task_definition("worker"),
            scheduler_task_arn=(scheduler.arn if scheduler else out.started_scheduler),
        ),
        tls=TlsStatus(not_after=secret.expires) if secret else None,
        message=message,
    )


def error_status(
    previous: ClusterStatus, error: DaskAwsError, generation: int | None
) -> ClusterStatus:
    permanent = isinstance(error, PermanentError)
    issue = (True, error.reason, error.message)
    return previous.model_copy(
        update={
            "phase": Phase.FAILED if permanent else previous.phase,
            "conditions": _conditions(
                previous,
                generation,
                ready=(False, error.reason, error.message),
                reconciling=(False, error.reason, error.message) if permanent else issue,
                stalled=issue if permanent else (False, "NoError", ""),
            ),
            "observed_generation": generation,
            "message": error.message,
        }
    )
