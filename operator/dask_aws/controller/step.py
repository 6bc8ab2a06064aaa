"""One operator step for one object: guardrails, autoscaling, the engine, the Secret.

Handlers call this and only translate its output for kopf; it is the single place that
computes status, so every writer of status writes the same thing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from pydantic import ValidationError

from dask_aws.aws.clients import Aws, connect
from dask_aws.aws.found import Target
from dask_aws.controller import autoscaler, guardrails, kube, metrics
from dask_aws.controller.config import OperatorConfig
from dask_aws.controller.state import ObjectState
from dask_aws.engine.delete import DeleteResult, delete
from dask_aws.engine.events import Event
from dask_aws.engine.reconcile import Result, failed_result, reconcile
from dask_aws.errors import PermanentError
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec, IdleAction
from dask_aws.status import ClusterStatus

AUTOSCALE_SECONDS = 5.0  # how often the scheduler's adaptive target and idleness are read
_clients: dict[str, Aws] = {}
_clients_lock = threading.Lock()


def aws_for(region: str | None, config: OperatorConfig) -> Aws:
    key = region or config.region or ""
    with _clients_lock:
        if key not in _clients:
            _clients[key] = connect(region=key or None, session=metrics.instrument(boto3.Session()))
        return _clients[key]


@dataclass
class StepOutput:
    status: dict[str, Any] | None = None  # None: nothing was due
    events: list[Event] = field(default_factory=list)
    delete_object: bool = False


def _previous(raw: Any) -> ClusterStatus:
    try:
        known = set(ClusterStatus.model_fields) | {
            f.alias for f in ClusterStatus.model_fields.values() if f.alias
        }
        return ClusterStatus.model_validate(
            {k: v for k, v in dict(raw or {}).items() if k in known}
        )
    except ValidationError:
        return ClusterStatus()


def parse_spec(raw: Any) -> DaskAwsClusterSpec:
    try:
        return DaskAwsClusterSpec.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise PermanentError("InvalidSpec", problems) from exc


def owner_of(meta: Any) -> Owner:
    return Owner(uid=meta["uid"], name=meta["name"], namespace=meta.get("namespace"))


def reconcile_object(
    body: Any, config: OperatorConfig, state: ObjectState, *, force: bool = False
) -> StepOutput:
    meta, generation = body["metadata"], body["metadata"].get("generation")
    if meta.get("deletionTimestamp"):
        # Being deleted (which also bumps generation): the delete handler owns it now.
        return StepOutput()
    now = time.monotonic()
    spec = body.get("spec") or {}
    watched = spec.get("autoscaling") or (spec.get("scheduler") or {}).get("idleTimeoutSeconds")
    resync = min(config.resync_seconds, AUTOSCALE_SECONDS) if watched else config.resync_seconds
    if not force and not state.due(generation, now, resync, config.progress_seconds):
        return StepOutput()
    with state.lock, metrics.RECONCILE_SECONDS.labels("reconcile").time():
        previous = _previous(body.get("status"))
        result, idle_delete = _run(body, config, state, previous, generation)
        state.last_run, state.last_generation = time.monotonic(), generation
        state.ready = result.ready
        if result.error is None:
            state.failures, state.next_attempt = 0, 0.0
            state.stalled_generation = None
        elif isinstance(result.error, PermanentError):
            state.stalled_generation = generation
        else:
            result.requeue_after = state.backoff(now)
        metrics.RECONCILES.labels("reconcile", "error" if result.error else "ok").inc()
        metrics.observe_phase(meta["uid"], result.status.phase.value)
        # None values stay in: a merge patch with null removes what no longer holds.
        status = result.status.model_dump(mode="json", by_alias=True)
        out = StepOutput(status=status, events=list(result.events))
        _sync_secret(meta, result.status, state)
        out.delete_object = idle_delete
        if idle_delete:
            out.events.append(Event("Normal", "IdleDeleted", "idle longer than idleTimeoutSeconds"))
        return out


def _run(
    body: Any,
    config: OperatorConfig,
    state: ObjectState,
    previous: ClusterStatus,
    generation: int | None,
) -> tuple[Result, bool]:
    try:
        spec = parse_spec(body.get("spec"))
        guardrails.check(spec, config)
    except PermanentError as exc:
        return failed_result(exc, previous, generation), False
    base = autoscaler.http_base(spec, previous.scheduler_address)
    idle = autoscaler.idle_action(spec, state, base)
    desired = autoscaler.desired_workers(spec, state, base, time.monotonic())
    target = Target(owner_of(body["metadata"]), spec)
    aws = aws_for(spec.region, config)
    result = reconcile(
        aws, target, generation=generation, previous=previous, desired_workers=desired
    )
    return result, idle is IdleAction.DELETE


def _sync_secret(meta: Any, status: ClusterStatus, state: ObjectState) -> None:
    if status.scheduler_address == state.scheduler_address or not status.scheduler_address:
        return
    kube.upsert_connection_secret(
        meta["namespace"],
        meta["name"],
        meta["uid"],
        {
            "scheduler-address": status.scheduler_address,
            "dashboard-address": status.dashboard_address or "",
        },
    )
    state.scheduler_address = status.scheduler_address


def delete_object(body: Any, config: OperatorConfig) -> DeleteResult:
    try:
        spec = parse_spec(body.get("spec"))
    except PermanentError:
        spec = DaskAwsClusterSpec()  # nothing was created for an invalid spec but the names
    with metrics.RECONCILE_SECONDS.labels("delete").time():
        result = delete(aws_for(spec.region, config), Target(owner_of(body["metadata"]), spec))
    metrics.RECONCILES.labels("delete", "ok" if result.done else "error").inc()
    if result.done:
        meta = body["metadata"]
        kube.delete_connection_secret(meta["namespace"], meta["name"])
        metrics.observe_phase(meta["uid"], None)
    return result
