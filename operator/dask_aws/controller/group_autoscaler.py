"""Autoscaling a cluster with named worker groups: the scheduler's demand split between
the groups (engine/demand.py says how), each group paced on its own.

A group without autoscaling bounds keeps its replicas (its minimum and maximum); the
default group (spec.workers) takes spec.autoscaling. Pacing is per group, as for a
cluster without groups: at most a quarter of a group's workers fewer a step, and
cooldownSeconds between two changes of the same group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dask_aws.engine import scheduler_api
from dask_aws.engine.demand import Demand, Group, split
from dask_aws.engine.scheduler_api import Endpoint
from dask_aws.spec import AutoscalingSpec, DaskAwsClusterSpec


@dataclass
class GroupTargets:
    """What the operator remembers between steps: each group's target and its last change."""

    targets: dict[str, int] = field(default_factory=dict)
    changed_at: dict[str, float] = field(default_factory=dict)


def autoscaled(spec: DaskAwsClusterSpec) -> bool:
    """Whether the split decides: a cluster with named groups, any of them autoscaled."""
    return bool(spec.worker_groups) and (
        spec.autoscaling is not None or any(g.autoscaling for g in spec.worker_groups)
    )


def _bounds(spec: DaskAwsClusterSpec, name: str) -> AutoscalingSpec | None:
    return spec.autoscaling if not name else spec.worker_group(name).autoscaling  # type: ignore[attr-defined]


def groups(spec: DaskAwsClusterSpec, ceiling: int | None = None) -> list[Group]:
    """The split's view of each group; `ceiling`: the operator's maxWorkers per group."""
    result = []
    for name in spec.group_names:
        shape = spec.worker_group(name)
        bounds = _bounds(spec, name)
        low, high = (bounds.minimum, bounds.maximum) if bounds else (shape.replicas,) * 2
        if ceiling is not None:
            low, high = min(low, ceiling), min(high, ceiling)
        result.append(
            Group(
                name=name,
                minimum=low,
                maximum=high,
                resources=shape.dask_resources(),
                threads=shape.nthreads or max(1, shape.cpu // 1024),
                capacity=shape.capacity_of.value,
            )
        )
    return result


def read_demand(base: Endpoint) -> Demand:
    """The scheduler's demand by restriction; its total target alone when it refuses the
    probe (distributed.scheduler.pickle off). SchedulerUnreachable when it cannot say."""
    try:
        return scheduler_api.demand(base)
    except scheduler_api.DemandUnavailable:
        return Demand.total_only(scheduler_api.adaptive_target(base))


def targets(
    spec: DaskAwsClusterSpec,
    memory: GroupTargets,
    base: Endpoint | None,
    now: float,
    ceiling: int | None = None,
) -> dict[str, int]:
    """Each group's worker count for this step (by name, "" for spec.workers)."""
    view = groups(spec, ceiling)
    current = {}
    for group in view:
        known = memory.targets.get(group.name)
        start = spec.worker_group(group.name).replicas if known is None else known
        current[group.name] = min(max(start, group.minimum), group.maximum)
        if known is None:
            memory.changed_at[group.name] = now
    memory.targets = dict(current)
    if base is None:
        return current
    try:
        wanted = split(view, read_demand(base)).targets
    except scheduler_api.SchedulerUnreachable:
        return current
    for group in view:
        bounds = _bounds(spec, group.name)
        cooldown = bounds.cooldown_seconds if bounds else 0
        if now - memory.changed_at.get(group.name, 0.0) < cooldown:
            continue
        have, want = current[group.name], wanted.get(group.name, group.minimum)
        if want < have:
            want = max(want, have - max(1, math.floor(have * 0.25)))
        if want != have:
            current[group.name] = want
            memory.changed_at[group.name] = now
    memory.targets = dict(current)
    return current
