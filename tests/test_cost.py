"""The Fargate price table and the pure pricing function (dask_aws.cost)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from dask_aws.cost import (
    FALLBACK_REGION,
    PRICES,
    SPOT_DISCOUNT,
    Price,
    RegionPrices,
    money,
    task_hourly_usd,
)

US_EAST_1 = PRICES["us-east-1"]


def test_one_vcpu_two_gib_is_vcpu_hour_plus_two_gb_hours() -> None:
    price = task_hourly_usd("us-east-1", 1024, 2048)
    assert price == Price(US_EAST_1.x86_vcpu_hour + 2 * US_EAST_1.x86_gb_hour)
    assert price.usd_per_hour == Decimal("0.04937")  # 0.04048 + 2 x 0.004445
    assert not price.estimated_region


def test_fractional_vcpu_and_memory() -> None:
    # 0.25 vCPU / 0.5 GB: AWS bills the fractions, not whole units.
    price = task_hourly_usd("us-east-1", 256, 512)
    assert price.usd_per_hour == US_EAST_1.x86_vcpu_hour / 4 + US_EAST_1.x86_gb_hour / 2


@pytest.mark.parametrize("region", sorted(PRICES))
def test_arm64_is_cheaper_than_x86(region: str) -> None:
    x86 = task_hourly_usd(region, 2048, 8192, architecture="X86_64")
    arm = task_hourly_usd(region, 2048, 8192, architecture="ARM64")
    assert arm.usd_per_hour < x86.usd_per_hour
    assert arm.usd_per_hour == 2 * PRICES[region].arm_vcpu_hour + 8 * PRICES[region].arm_gb_hour


def test_spot_applies_the_discount() -> None:
    on_demand = task_hourly_usd("us-east-1", 1024, 2048)
    spot = task_hourly_usd("us-east-1", 1024, 2048, spot=True)
    assert spot.usd_per_hour == on_demand.usd_per_hour * (1 - SPOT_DISCOUNT)
    assert spot.usd_per_hour == Decimal("0.014811")  # 30 % of 0.04937


def test_spot_leaves_ephemeral_storage_at_on_demand() -> None:
    base = task_hourly_usd("us-east-1", 1024, 2048, spot=True)
    more = task_hourly_usd("us-east-1", 1024, 2048, spot=True, ephemeral_storage_gib=30)
    assert more.usd_per_hour - base.usd_per_hour == 10 * US_EAST_1.storage_gb_hour


def test_ephemeral_storage_above_twenty_gib_is_charged() -> None:
    base = task_hourly_usd("us-east-1", 1024, 2048)
    assert task_hourly_usd("us-east-1", 1024, 2048, ephemeral_storage_gib=None) == base
    assert task_hourly_usd("us-east-1", 1024, 2048, ephemeral_storage_gib=20) == base
    with_21 = task_hourly_usd("us-east-1", 1024, 2048, ephemeral_storage_gib=21)
    assert with_21.usd_per_hour - base.usd_per_hour == US_EAST_1.storage_gb_hour


@pytest.mark.parametrize("launch_type", ["EC2", "EXTERNAL", "ec2"])
def test_ec2_launch_type_costs_nothing(launch_type: str) -> None:
    price = task_hourly_usd(
        "us-east-1", 4096, 16384, spot=True, ephemeral_storage_gib=100, launch_type=launch_type
    )
    assert price == Price(Decimal(0), estimated_region=False)


def test_unknown_region_falls_back_to_us_east_1_and_says_so() -> None:
    assert "xx-nowhere-1" not in PRICES
    price = task_hourly_usd("xx-nowhere-1", 1024, 2048)
    assert price.estimated_region
    assert price.usd_per_hour == task_hourly_usd(FALLBACK_REGION, 1024, 2048).usd_per_hour


def test_regions_differ() -> None:
    # eu-west-2 costs more than us-east-1: the table is per region, not one figure.
    assert (
        task_hourly_usd("eu-west-2", 1024, 2048).usd_per_hour
        > task_hourly_usd("us-east-1", 1024, 2048).usd_per_hour
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "POWER9"}, "architecture"),
        ({"launch_type": "LAMBDA"}, "launch type"),
        ({"ephemeral_storage_gib": -1}, "negative"),
    ],
)
def test_rejects_what_it_cannot_price(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        task_hourly_usd("us-east-1", 1024, 2048, **kwargs)  # type: ignore[arg-type]


def test_table_is_complete() -> None:
    assert FALLBACK_REGION in PRICES
    for region, prices in PRICES.items():
        for field in dataclasses.fields(RegionPrices):
            value = getattr(prices, field.name)
            assert isinstance(value, Decimal), (region, field.name)
            assert value.is_finite() and value > 0, (region, field.name)
        assert prices.arm_vcpu_hour < prices.x86_vcpu_hour, region
        assert prices.arm_gb_hour < prices.x86_gb_hour, region
        assert prices.storage_gb_hour < prices.arm_gb_hour, region


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.04937"), "0.049370"),
        (Decimal("0.1234565"), "0.123457"),  # half up
        (Decimal("1E-7"), "0.000000"),
        (Decimal("-1E-9"), "0.000000"),  # no negative zero
        (Decimal("0E-12"), "0.000000"),
        (Decimal("1.5E+3"), "1500.000000"),
        (Decimal("12345678.9"), "12345678.900000"),
        (Decimal(0), "0.000000"),
    ],
)
def test_money_is_plain_six_places(value: Decimal, expected: str) -> None:
    text = money(value)
    assert text == expected
    assert "e" not in text.lower()


def test_money_of_a_priced_task_never_has_an_exponent() -> None:
    for region in PRICES:
        for cpu, mem in [(256, 512), (1024, 2048), (16384, 122880)]:
            for spot in (False, True):
                text = money(task_hourly_usd(region, cpu, mem, spot=spot).usd_per_hour)
                assert "e" not in text.lower()
                assert len(text.split(".")[1]) == 6
