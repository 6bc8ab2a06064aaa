"""Autoscaling and idle shutdown, asked of the scheduler as a client (scheduler_api).

The autoscaler owns the worker count while spec.autoscaling is set: it follows the
scheduler's adaptive target, clamped to [minimum, maximum], scales down at most 25% a
step and waits cooldownSeconds between changes, so it neither flaps nor fights anyone.
`kubectl scale` (spec.workers.replicas) is only the starting size in that mode.
"""

from __future__ import annotations

import math
import time

from dask_aws.aws.clients import Aws
from dask_aws.controller.state import ObjectState
from dask_aws.engine import scheduler_api
from dask_aws.engine.endpoints import endpoint
from dask_aws.engine.scheduler_api import Endpoint
from dask_aws.spec import DaskAwsClusterSpec, IdleAction
from dask_aws.status import ClusterStatus


def scheduler_of(aws: Aws, spec: DaskAwsClusterSpec, previous: ClusterStatus) -> Endpoint | None:
    """The scheduler the last step saw, with the cluster's client certificate; None: none
    yet, or its credentials cannot be read now (then nothing is asked of it this step)."""
    if not previous.scheduler_address:
        return None
    ip = scheduler_api.host_of(previous.scheduler_address)
    try:
        return endpoint(aws, spec, ip, previous.aws.tls_secret_arn)
    except scheduler_api.SchedulerUnreachable:
        return None


def desired_workers(
    spec: DaskAwsClusterSpec,
    state: ObjectState,
    base: Endpoint | None,
    now: float,
    ceiling: int | None = None,
) -> int | None:
    """The worker count to ask the engine for; None: spec.workers.replicas as written.

    `ceiling`: the operator's maxWorkers; an autoscaling.maximum above it is clamped."""
    if state.idled:
        return 0
    bounds = spec.autoscaling
    if bounds is None:
        return None
    maximum = bounds.maximum if ceiling is None else min(bounds.maximum, ceiling)
    current = state.autoscale_target
    if current is None:
        current = min(max(spec.workers.replicas, bounds.minimum), maximum)
        state.autoscale_target, state.autoscale_changed_at = current, now
    current = min(max(current, bounds.minimum), maximum)
    if base is None or now - state.autoscale_changed_at < bounds.cooldown_seconds:
        return current
    try:
        wanted = scheduler_api.adaptive_target(base)
    except scheduler_api.SchedulerUnreachable:
        return current
    target = min(max(wanted, bounds.minimum), maximum)
    if target < current:
        target = max(target, current - max(1, math.floor(current * 0.25)))
    if target != current:
        state.autoscale_target, state.autoscale_changed_at = target, now
    return target


def idle_action(
    spec: DaskAwsClusterSpec, state: ObjectState, base: Endpoint | None
) -> IdleAction | None:
    """The action due because the cluster has been idle too long, if any."""
    timeout = spec.scheduler.idle_timeout_seconds
    if timeout is None or base is None:
        return None
    try:
        since = scheduler_api.idle_since(base)
    except scheduler_api.SchedulerUnreachable:
        return None
    if since is None:
        state.idled = False
        return None
    if time.time() - since < timeout:
        return None
    if spec.scheduler.idle_action is IdleAction.SCALE_TO_ZERO:
        state.idled = True
    return spec.scheduler.idle_action
