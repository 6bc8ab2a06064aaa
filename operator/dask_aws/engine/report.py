"""Status: what the step saw and did, in Kubernetes conventions (Ready/Reconciling/Stalled)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from dask_aws import certs
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import comm_address, dashboard_url
from dask_aws.engine.act import SCHEDULER_FIELDS, Outcome, capacity_reason
from dask_aws.engine.events import CAPACITY_LIMITED, Event
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
    WorkerGroupStatus,
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


def _refusals(out: Outcome) -> str | None:
    """What RunTask refused this step for a quota or capacity, in one sentence part."""
    if not out.refused:
        return None
    parts = []
    for component in dict.fromkeys(c for c, _ in out.refused):
        reasons = {r: n for (c, r), n in out.refused.items() if c == component}
        count = sum(reasons.values())
        what = (
            "the scheduler task"
            if component == "scheduler"
            else f"{count} more {component} task(s)"
        )
        if len(reasons) == 1:
            parts.append(f"AWS refused {what}: {next(iter(reasons))}")
        else:
            each = "; ".join(f"{n} x {r}" for r, n in reasons.items())
            parts.append(f"AWS refused {what}: {each}")
    return "; ".join(parts) + "; RunTask is tried again at every step"


def _capacity_events(
    previous: ClusterStatus, out: Outcome, counts: Mapping[str, WorkerCounts]
) -> None:
    """A Warning per distinct refusal, when it starts: not again while the previous status
    already said CapacityLimited with that reason. `counts`: by what the refusal names."""
    before = previous.condition(ConditionType.READY)
    said = before.message if before is not None and before.reason == CAPACITY_LIMITED else ""
    for (component, reason), count in out.refused.items():
        if reason in said:
            continue
        if component == "scheduler":
            what = "the scheduler task"
        else:
            group = counts.get(component, WorkerCounts())
            have = group.running + group.pending
            what = f"{count} {component} task(s) ({have}/{group.desired} running or starting)"
        out.events.append(
            Event(
                "Warning",
                CAPACITY_LIMITED,
                f"AWS refused to start {what}: {reason}. The cluster runs what fits and keeps "
                "asking for the rest.",
            )
        )


def _counts(plan: Plan, out: Outcome, group: str, desired: int) -> WorkerCounts:
    planned = plan.groups.get(group)
    kept = planned.kept if planned else []
    running = sum(1 for w in kept if w.running)
    pending = len(kept) - running + out.started_by_group.get(group, 0)
    return WorkerCounts(desired=desired, running=running, pending=pending)


def _groups(
    target: Target, plan: Plan, out: Outcome, desired: Mapping[str, int]
) -> list[WorkerGroupStatus]:
    return [
        WorkerGroupStatus(
            name=name,
            **_counts(plan, out, name, desired.get(name, 0)).model_dump(),
            task_definition_arn=out.task_definition("worker", name),
        )
        for name in target.spec.group_names[1:]
    ]


def converged_status(
    target: Target,
    observed: Observed,
    plan: Plan,
    out: Outcome,
    desired: int | Mapping[str, int],
    generation: int | None,
    previous: ClusterStatus,
    now: datetime | None = None,
) -> ClusterStatus:
    """The status after a step that ran; `desired` as plan() takes it. Events that only a
    comparison with `previous` can tell (a quota newly met) are added to `out.events`."""
    spec = target.spec
    scheduler = plan.scheduler
    wanted = {"": desired} if isinstance(desired, int) else dict(desired)
    counts = _counts(plan, out, "", wanted.get("", 0))
    groups = _groups(target, plan, out, wanted)
    running, pending, desired = counts.running, counts.pending, counts.desired
    on_target = running == desired and all(g.running == g.desired for g in groups)
    ready = scheduler is not None and on_target and not plan.mutates and not plan.outdated
    of_groups = "".join(f", {g.name} {g.running}/{g.desired}" for g in groups)
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
        why = ("Running", f"scheduler running, {running}/{desired} workers{of_groups}")
    elif plan.outdated:
        phase = Phase.SCALING
        why = (
            "RollingUpdate",
            f"{running}/{desired} workers run the new spec, {pending} starting; "
            f"{len(plan.outdated)} on the previous one keep serving until they are replaced",
        )
    else:
        phase = Phase.SCALING
        starting = pending + sum(g.pending for g in groups)
        why = ("Scaling", f"{running}/{desired} workers{of_groups} running, {starting} starting")
    refusals = _refusals(out)
    if refusals is not None and not ready:
        # What runs keeps running; the status says why the rest does not.
        why = (CAPACITY_LIMITED, f"{why[1]}; {refusals}")
        by_what = {"worker": counts, **{f"worker group {g.name}": g for g in groups}}
        _capacity_events(previous, out, by_what)
    others = [f for f in dict.fromkeys(out.failures) if capacity_reason(f) is None]
    failures = "; ".join([*([refusals] if refusals else []), *others])
    message = out.retire_fallback or failures or None
    current = scheduler or plan.workers_for  # running, or starting with its workers
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
        workers=counts,
        worker_groups=groups,
        aws=AwsStatus(
            cluster_arn=out.cluster_arn,
            execution_role_arn=observed.refs.execution_role_arn,
            task_role_arn=observed.refs.task_role_arn,
            security_group_id=out.security_groups[0] if out.security_groups else None,
            log_group=observed.refs.log_group,
            tls_secret_arn=secret.id if secret else None,
            scheduler_task_definition_arn=out.task_definition("scheduler"),
            worker_task_definition_arn=out.task_definition("worker"),
            scheduler_task_arn=current.arn if current else out.started_scheduler,
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
