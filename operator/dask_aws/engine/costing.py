"""What a cluster costs: the hourly rate of its live tasks, and what it has cost so far.

Prices come from cost.py's table (an estimate: list prices, no Savings Plans or taxes).
AWS bills a Fargate task from the start of its image pull until it stops, so every live
task counts, pending ones included. A worker is priced by its group's shape in the
current spec and by where it really runs (FARGATE_SPOT or not).

`accruedUSD` advances by the rate times the time elapsed, as of `asOf`. It is written
when the rate changes and at least every REFRESH, not at every step: a Ready cluster's
status stays unchanged between those, so the operator writes nothing to the API server
(readers add hourlyUSD x the hours since asOf for the amount right now).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from dask_aws import cost
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import Component
from dask_aws.aws.tasks import Task
from dask_aws.spec import Capacity, DaskAwsClusterSpec
from dask_aws.status import TIME_FORMAT, ClusterStatus, CostStatus

REFRESH = timedelta(minutes=15)
SPOT_PROVIDER = "FARGATE_SPOT"


def shape_rate(
    spec: DaskAwsClusterSpec, region: str, component: Component, group: str, spot: bool
) -> Decimal:
    """The hourly price of one scheduler or one worker of `group`, on Spot or not; a
    group the spec no longer has costs nothing (its tasks go)."""
    if component == "scheduler":
        cpu, memory = spec.scheduler.cpu, spec.scheduler.memory
        architecture, storage = spec.scheduler.architecture.value, None
    else:
        try:
            shape = spec.worker_group(group)
        except KeyError:
            return Decimal(0)
        cpu, memory = shape.cpu, shape.memory
        architecture, storage = shape.architecture.value, shape.ephemeral_storage_gib
    price = cost.task_hourly_usd(
        region,
        cpu,
        memory,
        architecture=architecture,
        spot=spot,
        ephemeral_storage_gib=storage,
        launch_type=spec.launch_type.value,
    )
    return price.usd_per_hour


def task_rate(target: Target, region: str, task: Task) -> Decimal:
    """The hourly price of one task, by where it really runs (FARGATE_SPOT or not)."""
    spot = task.capacity_provider == SPOT_PROVIDER
    return shape_rate(target.spec, region, task.component, task.group, spot)


def hourly(
    target: Target,
    region: str,
    tasks: Iterable[Task],
    started: Mapping[str, int] | None = None,
    scheduler_started: bool = False,
) -> Decimal:
    """The rate of the live `tasks` and of those just started (`started`: workers by group,
    on Spot where their group's capacity says so; RunTask's answer is not read back)."""
    spec = target.spec
    rate = sum((task_rate(target, region, t) for t in tasks if t.live), Decimal(0))
    for group, n in (started or {}).items():
        spot = spec.worker_group(group).capacity_of is not Capacity.ON_DEMAND
        rate += n * shape_rate(spec, region, "worker", group, spot)
    if scheduler_started:
        rate += shape_rate(spec, region, "scheduler", "", spot=False)
    return rate


def with_cost(
    status: ClusterStatus, previous: ClusterStatus, rate: Decimal, now: datetime
) -> ClusterStatus:
    """`status` with its cost: the previous accrual carried forward to `now` at the
    previous rate, rewritten only when the rate changed or REFRESH has passed."""
    before = previous.cost
    if before is None or before.as_of is None:
        fresh = CostStatus(
            hourly_usd=cost.money(rate), accrued_usd=cost.money(Decimal(0)), as_of=_at(now)
        )
        return status.model_copy(update={"cost": fresh})
    since = datetime.strptime(before.as_of, TIME_FORMAT).replace(tzinfo=now.tzinfo)
    if cost.money(rate) == before.hourly_usd and now - since < REFRESH:
        return status.model_copy(update={"cost": before})
    hours = Decimal(max(0.0, (now - since).total_seconds())) / Decimal(3600)
    accrued = Decimal(before.accrued_usd) + Decimal(before.hourly_usd) * hours
    updated = CostStatus(
        hourly_usd=cost.money(rate), accrued_usd=cost.money(accrued), as_of=_at(now)
    )
    return status.model_copy(update={"cost": updated})


def _at(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)
