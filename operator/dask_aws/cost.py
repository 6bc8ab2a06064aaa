"""What a cluster's ECS tasks cost by the hour: an ESTIMATE from a price table kept in this file.

Source: AWS Fargate pricing, Linux, on-demand, https://aws.amazon.com/fargate/pricing/ , the same
figures as the AWS Price List offer for AmazonECS
(https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonECS/current/<region>/index.json,
usage types ``<prefix>-Fargate-vCPU-Hours:perCPU``, ``-Fargate-GB-Hours``,
``-Fargate-ARM-vCPU-Hours:perCPU``, ``-Fargate-ARM-GB-Hours``,
``-Fargate-EphemeralStorage-GB-Hours``). AWS renders that page's regional figures with
JavaScript, so they were taken from public quotations of the page and of the Price List API:
us-east-1 from several that agree, two of them dated 2026-08-28 and 2026-09-23; us-east-2 and
eu-west-2 from one undated quotation each of the Price List API. Copied here on 2026-12-01.

Only regions for which all five figures were found are listed; none is inferred (e.g. ARM as
"x86 less 20 %"). Any other region is priced as us-east-1 and the result says so
(``Price.estimated_region``).

What the estimate leaves out: Savings Plans and other discounts, taxes, data transfer, load
balancers, logs and every other service, the one-minute minimum, and price changes after the date
above. Fargate Spot has no fixed price (AWS sets it per region from supply and demand, "up to 70 %"
off on-demand); ``SPOT_DISCOUNT`` assumes the full 70 %, so the Spot figure is a lower bound more
than a quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

__all__ = [
    "FALLBACK_REGION",
    "INCLUDED_EPHEMERAL_STORAGE_GIB",
    "PRICES",
    "PRICES_AS_OF",
    "PRICES_SOURCE",
    "SPOT_DISCOUNT",
    "Price",
    "RegionPrices",
    "money",
    "task_hourly_usd",
]

PRICES_SOURCE: Final = "https://aws.amazon.com/fargate/pricing/"
PRICES_AS_OF: Final = "2026-12-01"


@dataclass(frozen=True)
class RegionPrices:
    """One region's Fargate Linux on-demand prices, USD."""

    x86_vcpu_hour: Decimal
    x86_gb_hour: Decimal
    arm_vcpu_hour: Decimal
    arm_gb_hour: Decimal
    storage_gb_hour: Decimal  # ephemeral storage, only the GB above the included 20


def _region(x86_vcpu: str, x86_gb: str, arm_vcpu: str, arm_gb: str, storage: str) -> RegionPrices:
    # Strings, never floats: Decimal(0.04048) would carry the binary float's error into money.
    return RegionPrices(
        Decimal(x86_vcpu), Decimal(x86_gb), Decimal(arm_vcpu), Decimal(arm_gb), Decimal(storage)
    )


#                        x86 vCPU-h  x86 GB-h    ARM vCPU-h  ARM GB-h   storage GB-h
PRICES: Final[dict[str, RegionPrices]] = {
    "us-east-1": _region("0.04048", "0.004445", "0.03238", "0.00356", "0.000111"),
    "us-east-2": _region("0.04048", "0.004445", "0.03238", "0.00356", "0.000111"),
    "eu-west-2": _region("0.04656", "0.00511", "0.03725", "0.00409", "0.000129"),
}

FALLBACK_REGION: Final = "us-east-1"

# AWS: Fargate Spot runs "at up to a 70% discount off the regular Fargate price"; the actual
# discount moves with spare capacity. Applied to vCPU and memory, the dimensions AWS publishes Spot
# prices for; ephemeral storage stays at the on-demand rate, which keeps the estimate on the high
# side there.
SPOT_DISCOUNT: Final = Decimal("0.70")

INCLUDED_EPHEMERAL_STORAGE_GIB: Final = 20

_CPU_UNITS_PER_VCPU: Final = Decimal(1024)
_MIB_PER_GB: Final = Decimal(1024)  # AWS bills memory in GB where 1 GB = 1024 MiB
_ARCHITECTURES: Final = frozenset({"X86_64", "ARM64"})
# AWS bills the instances behind EC2 (and on-premises, EXTERNAL) tasks, not the tasks, so a task's
# own price there is zero; the instances are outside what this module can see.
_UNPRICED_LAUNCH_TYPES: Final = frozenset({"EC2", "EXTERNAL"})
_MONEY_PLACES: Final = Decimal("0.000001")


@dataclass(frozen=True)
class Price:
    """An hourly price and whether it is another region's (``estimated_region``)."""

    usd_per_hour: Decimal
    estimated_region: bool = False


def task_hourly_usd(
    region: str,
    cpu_units: int,
    memory_mib: int,
    *,
    architecture: str = "X86_64",
    spot: bool = False,
    ephemeral_storage_gib: int | None = None,
    launch_type: str = "FARGATE",
) -> Price:
    """The estimated USD per hour of one running ECS task.

    ``cpu_units`` as in a task definition (1024 = 1 vCPU), ``memory_mib`` in MiB (billed as
    ``memory_mib / 1024`` GB), ``architecture`` the runtime platform's cpuArchitecture (``X86_64``
    or ``ARM64``), ``ephemeral_storage_gib`` the task's ephemeralStorage sizeInGiB (None: the
    default 20 GiB, which is included). ``launch_type`` ``EC2`` or ``EXTERNAL`` costs 0: AWS bills
    the instances, not the tasks. A region missing from ``PRICES`` is priced as us-east-1 and the
    result has ``estimated_region`` set. Unrounded; see ``money`` for the string form.
    """
    launch = launch_type.upper()
    if launch in _UNPRICED_LAUNCH_TYPES:
        return Price(Decimal(0))
    if launch != "FARGATE":
        raise ValueError(f"unknown launch type {launch_type!r}: FARGATE, EC2 or EXTERNAL")
    arch = architecture.upper()
    if arch not in _ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: X86_64 or ARM64")
    if cpu_units < 0 or memory_mib < 0 or (ephemeral_storage_gib or 0) < 0:
        raise ValueError("cpu_units, memory_mib and ephemeral_storage_gib must not be negative")

    table = PRICES.get(region)
    estimated = table is None
    if table is None:
        table = PRICES[FALLBACK_REGION]

    vcpu = Decimal(cpu_units) / _CPU_UNITS_PER_VCPU
    gb = Decimal(memory_mib) / _MIB_PER_GB
    if arch == "ARM64":
        compute = vcpu * table.arm_vcpu_hour + gb * table.arm_gb_hour
    else:
        compute = vcpu * table.x86_vcpu_hour + gb * table.x86_gb_hour
    if spot:
        compute *= 1 - SPOT_DISCOUNT

    extra_gib = max(0, (ephemeral_storage_gib or 0) - INCLUDED_EPHEMERAL_STORAGE_GIB)
    storage = Decimal(extra_gib) * table.storage_gb_hour
    return Price(compute + storage, estimated_region=estimated)


def money(value: Decimal) -> str:
    """``value`` as the decimal string status carries: 6 places, half up, never an exponent."""
    rounded = value.quantize(_MONEY_PLACES, rounding=ROUND_HALF_UP)
    if rounded.is_zero():
        rounded = abs(rounded)  # no "-0.000000" from a tiny negative
    return format(rounded, "f")
