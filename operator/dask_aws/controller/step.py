"""One operator step for one object: guardrails, autoscaling, the engine, the Secret.

Handlers call this and only translate its output for kopf; it is the single place that
computes status, so every writer of status writes the same thing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dask_aws import certs
from dask_aws.aws import identity, tls_secret
from dask_aws.aws.found import Target
from dask_aws.controller import (
    accounts,
    autoscaler,
    connection,
    group_autoscaler,
    guardrails,
    metrics,
    tenancy,
)
from dask_aws.controller.config import OperatorConfig
from dask_aws.controller.fit import cut, fit
from dask_aws.controller.state import ObjectState
from dask_aws.engine.delete import DeleteResult, delete
from dask_aws.engine.events import Event
from dask_aws.engine.reconcile import Result, failed_result, reconcile, worker_targets
from dask_aws.engine.scheduler_api import Endpoint
from dask_aws.errors import DaskAwsError, PermanentError
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec, DeletionPolicy, IdleAction
from dask_aws.status import ClusterStatus

AUTOSCALE_SECONDS = 5.0  # how often the scheduler's adaptive target and idleness are read
# How often a cluster with Spot workers reads its tasks (two calls): an interrupted worker
# hands its data over within its 110 s drain window, and its replacement should start at once.
SPOT_SECONDS = 10.0
# Expected problems (bad input, AWS refusing) get one line here, naming the object; only
# bugs (unexpected exceptions) reach kopf, which logs them with a traceback.
logger = logging.getLogger("dask_aws.operator")
LOG_MESSAGE_BYTES = 2048


@dataclass
class StepOutput:
    status: dict[str, Any] | None = None  # None: nothing was due
    events: list[Event] = field(default_factory=list)
    delete_object: bool = False


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: Any) -> M:
    """A spec as the API server holds it; PermanentError InvalidSpec naming each field."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise PermanentError("InvalidSpec", problems) from exc


def parse_spec(raw: Any) -> DaskAwsClusterSpec:
    return parse(DaskAwsClusterSpec, raw)


def owner_of(meta: Any) -> Owner:
    return Owner(uid=meta["uid"], name=meta["name"], namespace=meta.get("namespace"))


def reconcile_object(
    body: Any,
    config: OperatorConfig,
    state: ObjectState,
    *,
    force: bool = False,
    view: tenancy.Namespace | None = None,
) -> StepOutput:
    """`view`: the namespace's DaskAwsPolicies and clusters (kopf's indexes)."""
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        # Being deleted (which also bumps generation): the delete handler owns it now.
        return StepOutput()
    # A timer tick does not queue behind another step of this object (a handler's
    # reconcile, the deletion): that step is doing the work, the next tick looks again.
    if not state.lock.acquire(blocking=force):
        return StepOutput()
    try:
        # Whether a step is due is decided under the lock: checked before it, a tick that
        # waited would redo the step that just ran.
        if not force and not _due(body, state):
            return StepOutput()
        with metrics.RECONCILE_SECONDS.labels("reconcile").time():
            return _step(body, config, state, view or tenancy.Namespace())
    finally:
        state.lock.release()


def _due(body: Any, state: ObjectState) -> bool:
    return state.due(body["metadata"].get("generation"), time.monotonic())


def _resync(body: Any, config: OperatorConfig) -> float:
    """How long a Ready object waits for its next step; autoscaling reads the scheduler."""
    spec = body.get("spec") or {}
    watched = (
        spec.get("autoscaling")
        or (spec.get("scheduler") or {}).get("idleTimeoutSeconds")
        or any(g.get("autoscaling") for g in spec.get("workerGroups") or [])
    )
    if watched:
        return min(config.resync_seconds, AUTOSCALE_SECONDS)
    groups = [spec.get("workers") or {}, *(spec.get("workerGroups") or [])]
    if any(g.get("spot") or g.get("capacity", "OnDemand") != "OnDemand" for g in groups):
        return min(config.resync_seconds, SPOT_SECONDS)
    return config.resync_seconds


def _step(
    body: Any, config: OperatorConfig, state: ObjectState, view: tenancy.Namespace
) -> StepOutput:
    meta, generation = body["metadata"], body["metadata"].get("generation")
    previous = ClusterStatus.lenient(body.get("status"))
    result, idle_delete = _run(body, config, state, previous, generation, view)
    state.last_generation = generation
    state.ready = result.ready
    if result.error is None:
        state.failures = 0
        state.stalled_generation = None
        state.problem = None
    elif isinstance(result.error, tenancy.PolicyError):
        # Stalled by a policy: looked at again soon, without AWS calls, since a policy or
        # another cluster may change without this spec changing. Logged when it changes.
        result.requeue_after = tenancy.RECHECK_SECONDS
        if state.problem != result.error.message:
            state.problem = result.error.message
            _log_problem(meta, result.error, None)
    elif isinstance(result.error, PermanentError):
        state.stalled_generation = generation
        _log_problem(meta, result.error, None)
    else:
        result.requeue_after = state.backoff()
        _log_problem(meta, result.error, result.requeue_after)
    wait = result.requeue_after
    state.next_run = time.monotonic() + (_resync(body, config) if wait is None else wait)
    metrics.RECONCILES.labels("reconcile", "error" if result.error else "ok").inc()
    metrics.observe_phase(meta["uid"], result.status.phase.value)
    metrics.observe_cluster(meta, result.status)
    # None values stay in: a merge patch with null removes what no longer holds.
    status = result.status.model_dump(mode="json", by_alias=True)
    recorded = result.status.aws
    secret_event = connection.sync(
        meta,
        result.status,
        state,
        lambda arn: _bundle(arn, config, recorded.role_arn, recorded.external_id),
    )
    connection.note(status, secret_event)
    out = StepOutput(status=fit(status), events=list(result.events))
    out.events += [secret_event] if secret_event else []
    out.delete_object = idle_delete
    if idle_delete:
        idle = "The scheduler was idle longer than scheduler.idleTimeoutSeconds: deleting it."
        out.events.append(Event("Normal", "IdleDeleted", idle))
    return out


def _bundle(
    secret_arn: str, config: OperatorConfig, role_arn: str | None, external_id: str | None
) -> certs.Bundle:
    """The cluster's certificates, from its secret (in the region its ARN names), read as
    the identity that made it."""
    aws = accounts.aws_for(secret_arn.split(":")[3], config, role_arn, external_id)
    return tls_secret.bundle(aws, secret_arn)


def _run(
    body: Any,
    config: OperatorConfig,
    state: ObjectState,
    previous: ClusterStatus,
    generation: int | None,
    view: tenancy.Namespace,
) -> tuple[Result, bool]:
    meta = body["metadata"]
    uid, namespace = meta["uid"], meta.get("namespace") or ""
    try:
        policy = tenancy.effective(view)
        spec = parse_spec(tenancy.with_defaults(body.get("spec"), policy))
        guardrails.check(spec, config)
        tenancy.check(spec, policy)
        tenancy.admit(uid, namespace, spec, body.get("status"), view, policy)
        role = policy.aws
        aws = accounts.aws_for(
            spec.region or (role.region if role else None),
            config,
            role.role_arn if role else None,
            role.external_id if role else None,
        )
    except PermanentError as exc:
        if exc.reason == identity.ASSUME_ROLE_FAILED:
            # Fixed on the role's side, not in this spec: looked at again soon.
            exc = tenancy.PolicyError(exc.reason, exc.message, exc.aws)
        return failed_result(exc, previous, generation), False
    scheduler = autoscaler.scheduler_of(aws, spec, previous)
    idle = autoscaler.idle_action(spec, state, scheduler)
    desired, groups = _targets(spec, state, scheduler, config)
    wanted = worker_targets(spec, desired, groups)
    targets, clamped = tenancy.clamp(uid, namespace, spec, wanted, view, policy)
    target = Target(owner_of(meta), spec)
    state.memory.drift_seconds = config.drift_seconds
    result = reconcile(
        aws,
        target,
        generation=generation,
        previous=previous,
        desired_workers=targets[""],
        memory=state.memory,
        group_targets=targets,
    )
    if clamped:
        message = "; ".join(filter(None, [clamped, result.status.message]))
        result.status = result.status.model_copy(update={"message": message})
        if clamped != state.clamped:
            result.events.append(
                Event("Warning", "ScaleClamped", clamped[0].upper() + clamped[1:] + ".")
            )
    state.clamped = clamped
    if role is not None:  # deletion and the connection Secret act as the same identity
        recorded = result.status.aws.model_copy(
            update={"role_arn": role.role_arn, "external_id": role.external_id}
        )
        result.status = result.status.model_copy(update={"aws": recorded})
    return result, idle is IdleAction.DELETE


def _targets(
    spec: DaskAwsClusterSpec, state: ObjectState, scheduler: Endpoint | None, config: OperatorConfig
) -> tuple[int | None, dict[str, int] | None]:
    """The default group's count and the named groups' (None: as the spec says)."""
    now = time.monotonic()
    if state.idled:
        return 0, dict.fromkeys(spec.group_names, 0)
    if group_autoscaler.autoscaled(spec):
        targets = group_autoscaler.targets(spec, state.groups, scheduler, now, config.max_workers)
        return targets.get(""), targets
    return autoscaler.desired_workers(spec, state, scheduler, now, ceiling=config.max_workers), None


def describe(error: DaskAwsError) -> str:
    """Reason, message and what AWS said, on one line."""
    text = f"{error.reason}: {error.message}"
    if error.aws is not None:
        text += f" [AWS {error.aws.operation}: {error.aws.code}]"
    return text


def _log_problem(meta: Any, error: DaskAwsError, retry_in: float | None) -> None:
    what = "stalled until the spec changes" if retry_in is None else f"retry in {retry_in:.0f}s"
    # Cut: a message may quote hostile input at length; the status and Event hold it too.
    text = cut(describe(error), LOG_MESSAGE_BYTES)
    logger.warning("%s/%s: %s (%s)", meta.get("namespace"), meta["name"], text, what)


def delete_object(body: Any, config: OperatorConfig) -> DeleteResult:
    raw = body.get("spec") or {}
    recorded = ClusterStatus.lenient(body.get("status")).aws.created
    try:
        spec, readable = parse_spec(raw), True
    except PermanentError:
        # What the status records is deleted wherever it is; a default spec would look
        # in the wrong place (and ignore Retain).
        spec, readable = DaskAwsClusterSpec(), False
    retain = raw.get("deletionPolicy") == DeletionPolicy.RETAIN.value
    region = spec.region if readable else next((e.region for e in recorded if e.region), None)
    was = ClusterStatus.lenient(body.get("status")).aws
    with metrics.RECONCILE_SECONDS.labels("delete").time():
        result = delete(
            accounts.aws_for(region, config, was.role_arn, was.external_id),
            Target(owner_of(body["metadata"]), spec),
            recorded,
            discover=readable,
            retain=retain,
        )
    metrics.RECONCILES.labels("delete", "ok" if result.done else "error").inc()
    if result.done:
        meta = body["metadata"]
        tenancy.forget(meta.get("namespace") or "", meta["uid"])
        connection.delete(meta)
        metrics.observe_phase(meta["uid"], None)
        metrics.observe_cluster(meta, None)
    return result
