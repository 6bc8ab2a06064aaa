"""status.cost: the hourly rate is the price table times what runs (on demand, Spot, ARM),
it follows the cluster's size, and the accrual is written only when something changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dask_aws import cost
from dask_aws.engine.costing import REFRESH, with_cost
from dask_aws.engine.delete import delete
from dask_aws.status import ClusterStatus, CostStatus
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import converge, target
from tests.fixtures.leaks import tagged_resources

REGION = "us-east-1"
SMALL = {"cpu": 512, "memory": 1024}


def _price(cpu: int, memory: int, **kwargs: Any) -> Decimal:
    return cost.task_hourly_usd(REGION, cpu, memory, **kwargs).usd_per_hour


def test_the_hourly_rate_is_the_table_times_what_runs_and_follows_the_scale(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target(
        "priced",
        scheduler=dict(SMALL),
        workers={"replicas": 2, **SMALL},
        workerGroups=[
            {"name": "spot", "capacity": "Spot", "replicas": 1, "cpu": 1024, "memory": 2048},
            {"name": "arm", "architecture": "ARM64", "replicas": 1, **SMALL},
            {"name": "disk", "ephemeralStorageGiB": 50, "replicas": 1, **SMALL},
        ],
    )
    base = (
        _price(512, 1024)  # the scheduler
        + _price(1024, 2048, spot=True)
        + _price(512, 1024, architecture="ARM64")
        + _price(512, 1024, ephemeral_storage_gib=50)
    )
    try:
        result = converge(aws, tgt)
        assert result.status.cost is not None
        assert result.status.cost.hourly_usd == cost.money(base + 2 * _price(512, 1024))
        assert _price(512, 1024, architecture="ARM64") < _price(512, 1024)
        assert _price(1024, 2048, spot=True) < _price(1024, 2048)
        bigger = converge(aws, tgt, previous=result.status, desired_workers=5)
        assert bigger.status.cost is not None
        assert bigger.status.cost.hourly_usd == cost.money(base + 5 * _price(512, 1024))
    finally:
        delete(aws, tgt)
    assert tagged_resources(aws, tgt.owner.uid) == []


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _status(hourly: str, accrued: str, at: datetime) -> ClusterStatus:
    return ClusterStatus(
        cost=CostStatus(
            hourly_usd=hourly, accrued_usd=accrued, as_of=at.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    )


def test_a_new_cluster_starts_accruing_from_zero() -> None:
    status = with_cost(ClusterStatus(), ClusterStatus(), Decimal("0.5"), NOW)
    assert status.cost == CostStatus(
        hourly_usd="0.500000", accrued_usd="0.000000", as_of="2026-12-01T12:00:00Z"
    )


def test_an_unchanged_rate_rewrites_nothing_until_the_refresh() -> None:
    previous = _status("0.500000", "1.000000", NOW)
    soon = with_cost(ClusterStatus(), previous, Decimal("0.5"), NOW + timedelta(minutes=5))
    assert soon.cost == previous.cost  # the status patch stays empty: no API write
    later = with_cost(ClusterStatus(), previous, Decimal("0.5"), NOW + REFRESH)
    assert later.cost is not None
    assert later.cost.accrued_usd == cost.money(Decimal("1") + Decimal("0.5") / 4)


def test_a_rate_change_books_the_time_at_the_old_rate() -> None:
    previous = _status("0.600000", "0", NOW)
    scaled = with_cost(ClusterStatus(), previous, Decimal("1.2"), NOW + timedelta(minutes=30))
    assert scaled.cost is not None
    assert scaled.cost.accrued_usd == "0.300000" and scaled.cost.hourly_usd == "1.200000"
