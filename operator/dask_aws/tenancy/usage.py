"""What the clusters of a namespace hold, against the limits of its policies.

A cluster holds its scheduler and its desired workers (not only the running ones: the
operator is about to start the rest). `exceeded` judges a new cluster at admission;
`clamp` lowers a running cluster's worker targets to what the limits leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import ROUND_CEILING, Decimal

from dask_aws import cost
from dask_aws.engine import costing
from dask_aws.spec import AutoscalingSpec, Capacity, DaskAwsClusterSpec
from dask_aws.status import ClusterStatus
from dask_aws.tenancy.merge import LIMIT_KEYS, Effective
from dask_aws.tenancy.spec import PolicyUsage

_CPU_UNITS = Decimal(1024)  # ECS CPU units per vCPU
# The limits clamp() enforces on worker targets. hourlyUSD is only reported: prices are
# estimates (list prices, a guessed Spot discount) and a Spot worker's price varies, so
# stopping workers over it would act on numbers that are not the bill.
CLAMPED = ("workers", "vcpu", "memoryMiB", "gpus")
_ATTR = {
    "clusters": "clusters",
    "workers": "workers",
    "vcpu": "vcpu",
    "memoryMiB": "memory_mib",
    "gpus": "gpus",
    "hourlyUSD": "hourly_usd",
}


@dataclass(frozen=True)
class Usage:
    clusters: int = 0
    workers: int = 0
    vcpu: Decimal = Decimal(0)
    memory_mib: int = 0
    gpus: int = 0
    hourly_usd: Decimal = Decimal(0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def get(self, key: str) -> Decimal:
        """The amount under a limit key of LIMIT_KEYS (memoryMiB, hourlyUSD, ...)."""
        return Decimal(getattr(self, _ATTR[key]))

    def as_status(self) -> PolicyUsage:
        return PolicyUsage(
            clusters=self.clusters,
            workers=self.workers,
            vcpu=float(self.vcpu),  # exact: a sum of multiples of 1/1024
            memory_mib=self.memory_mib,
            gpus=self.gpus,
            hourly_usd=cost.money(self.hourly_usd),
        )


def _starting(replicas: int, autoscaling: AutoscalingSpec | None) -> int:
    """The workers a group starts with: replicas, within the autoscaling bounds."""
    if autoscaling is None:
        return replicas
    return min(max(replicas, autoscaling.minimum), autoscaling.maximum)


def desired_workers(spec: DaskAwsClusterSpec, status: ClusterStatus | None) -> dict[str, int]:
    """Workers wanted per group ("" = spec.workers): the operator's latest targets from
    status, else (never reconciled, or a group it has not counted yet) the starting size."""
    # observedGeneration 0 is the CRD's default: the API server fills status.workers with
    # zeros before the operator has seen the object, which would count nothing.
    known = status is not None and bool(status.observed_generation)
    groups = {g.name: g.desired for g in status.worker_groups} if status and known else {}
    counts = {"": status.workers.desired if status and known else None}
    counts |= {g.name: groups.get(g.name) for g in spec.worker_groups}
    starting = {"": _starting(spec.workers.replicas, spec.autoscaling)}
    starting |= {g.name: _starting(g.replicas, g.autoscaling) for g in spec.worker_groups}
    return {name: starting[name] if n is None else n for name, n in counts.items()}


def _held(spec: DaskAwsClusterSpec, workers: Mapping[str, int]) -> Usage:
    """One cluster: its scheduler and `workers` per group of the spec."""
    total = Usage(
        clusters=1, vcpu=Decimal(spec.scheduler.cpu) / _CPU_UNITS, memory_mib=spec.scheduler.memory
    )
    for name in spec.group_names:
        total += _workers_of(spec, name, workers.get(name, 0))
    return total


def _workers_of(spec: DaskAwsClusterSpec, group: str, n: int) -> Usage:
    shape = spec.worker_group(group)
    return Usage(
        workers=n,
        vcpu=Decimal(shape.cpu) / _CPU_UNITS * n,
        memory_mib=shape.memory * n,
        gpus=shape.gpu * n,
    )


def usage_of(spec: DaskAwsClusterSpec, status: ClusterStatus | None) -> Usage:
    """What one cluster holds; hourly is its status.cost.hourlyUSD, or, before it has one
    (a cluster asking to be admitted), the price of its starting size."""
    counts = desired_workers(spec, status)
    held = _held(spec, counts)
    if status and status.cost:
        hourly = Decimal(status.cost.hourly_usd)
    else:
        hourly = starting_price(spec, counts)
    return held + Usage(hourly_usd=hourly)


def starting_price(spec: DaskAwsClusterSpec, counts: Mapping[str, int]) -> Decimal:
    """The hourly price of the scheduler and `counts` workers per group (cost.py's table;
    Spot groups at the Spot estimate; a spec without a region is priced as the table's
    fallback region, which is a guess: admission is an estimate, not a bill)."""
    region = spec.region or cost.FALLBACK_REGION
    total = costing.shape_rate(spec, region, "scheduler", "", spot=False)
    for name, n in counts.items():
        if name not in spec.group_names or n <= 0:
            continue
        spot = spec.worker_group(name).capacity_of is not Capacity.ON_DEMAND
        total += n * costing.shape_rate(spec, region, "worker", name, spot)
    return total


def show(value: Decimal) -> str:
    """A number for messages: 64, not 64.0 or 6.4E+1."""
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def exceeded(this: Usage, others: Usage, eff: Effective) -> list[str]:
    """Why admitting `this` next to `others` would break a limit: one sentence per limit
    that `this` adds to and that the total would exceed."""
    total = this + others
    return [
        f"{key}: {show(total.get(key))} would exceed the limit {show(limit.value)} of policy "
        f"{limit.policy}"
        for key in LIMIT_KEYS
        if (limit := eff.limits.get(key)) and this.get(key) > 0 and total.get(key) > limit.value
    ]


def clamp(
    spec: DaskAwsClusterSpec, desired: Mapping[str, int], others: Usage, eff: Effective
) -> tuple[dict[str, int], str | None]:
    """`desired` (workers per group) lowered so that this cluster and `others` keep within
    the workers, vcpu, memoryMiB and gpus limits; the last groups in spec order go first,
    and a group is lowered only for a limit it counts toward. Also the message saying what
    was lowered, or None. Keys the spec has no group for are returned as they are."""
    counts = dict(desired)
    total = _held(spec, counts) + others
    excess = {
        key: total.get(key) - limit.value
        for key in CLAMPED
        if (limit := eff.limits.get(key)) and total.get(key) > limit.value
    }
    if not excess:
        return counts, None
    for name in reversed(spec.group_names):
        if name not in desired or not any(left > 0 for left in excess.values()):
            continue
        one = _workers_of(spec, name, 1)
        needed = [
            (left / one.get(key)).to_integral_value(rounding=ROUND_CEILING)
            for key, left in excess.items()
            if left > 0 and one.get(key) > 0
        ]
        cut = min(counts[name], int(max(needed, default=0)))
        counts[name] -= cut
        excess = {key: left - one.get(key) * cut for key, left in excess.items()}
    return counts, _message(spec, desired, counts, others, eff)


def _message(
    spec: DaskAwsClusterSpec,
    before: Mapping[str, int],
    after: Mapping[str, int],
    others: Usage,
    eff: Effective,
) -> str | None:
    names = spec.group_names
    was, now = sum(before.get(n, 0) for n in names), sum(after.get(n, 0) for n in names)
    if was == now:
        return None  # over a limit, but this cluster's workers count nothing toward it
    lowered = [
        f"{f'workerGroups[{n}]' if n else 'workers'} from {before[n]} to {after[n]}"
        for n in names
        if n in before and after[n] != before[n]
    ]
    held = _held(spec, before) + others
    bounds = [
        f"the {key} limit {show(limit.value)} of policy {limit.policy} "
        f"({show(others.get(key))} used by other clusters)"
        for key in CLAMPED
        if (limit := eff.limits.get(key)) and held.get(key) > limit.value
    ]
    detail = f" ({', '.join(lowered)})" if len(spec.group_names) > 1 else ""
    return f"workers clamped from {was} to {now}{detail} by {' and '.join(bounds)}"
