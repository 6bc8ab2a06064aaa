"""Counting what clusters hold, refusing what would exceed a limit, clamping worker targets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dask_aws import cost
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import ClusterStatus, ConditionType
from dask_aws.tenancy.merge import Effective, effective
from dask_aws.tenancy.report import AT_LIMIT, CONFLICT, WITHIN, limit_message, policy_status
from dask_aws.tenancy.spec import DaskAwsPolicySpec, PolicyUsage
from dask_aws.tenancy.usage import Usage, clamp, exceeded, usage_of

GPU_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"
# Scheduler 1 vCPU / 4096 MiB; default workers 4 vCPU / 16384 MiB each.
SCHEDULER = Usage(clusters=1, vcpu=Decimal(1), memory_mib=4096)


def limits(name: str = "team-a", **wire: Any) -> Effective:
    return effective([(name, DaskAwsPolicySpec.model_validate({"limits": wire}))])


def gpu_spec() -> DaskAwsClusterSpec:
    return DaskAwsClusterSpec(
        launch_type="EC2",
        cluster_arn=GPU_CLUSTER,
        workers={"replicas": 2, "cpu": 2048, "memory": 8192},
        worker_groups=[
            {"name": "gpu", "replicas": 3, "gpu": 2, "cpu": 4096, "memory": 30720},
            {"name": "small", "replicas": 4, "cpu": 512, "memory": 1024},
        ],
    )


def _table(cpu: int, memory: int, **kwargs: Any) -> Decimal:
    return cost.task_hourly_usd("us-east-1", cpu, memory, **kwargs).usd_per_hour


# The default spec's starting size: a 1 vCPU/4 GiB scheduler and one 4 vCPU/16 GiB worker.
DEFAULT_HOURLY = _table(1024, 4096) + _table(4096, 16384)


def test_usage_from_the_spec_before_any_status() -> None:
    assert usage_of(DaskAwsClusterSpec(), None) == Usage(1, 1, Decimal(5), 20480, 0, DEFAULT_HOURLY)
    spec = gpu_spec()
    assert usage_of(spec, None) == Usage(
        clusters=1,
        workers=9,
        vcpu=Decimal(1 + 2 * 2 + 3 * 4) + Decimal("0.5") * 4,
        memory_mib=4096 + 2 * 8192 + 3 * 30720 + 4 * 1024,
        gpus=6,
    )
    # observedGeneration 0: the API server's defaulted status, zeros nobody wrote.
    assert usage_of(spec, ClusterStatus.model_validate({"observedGeneration": 0})).workers == 9


def test_autoscaling_starts_within_its_bounds() -> None:
    spec = DaskAwsClusterSpec(
        workers={"replicas": 1},
        autoscaling={"minimum": 3, "maximum": 10},
        worker_groups=[{"name": "g", "replicas": 50, "autoscaling": {"maximum": 5}}],
    )
    assert usage_of(spec, None).workers == 3 + 5


def test_usage_from_the_status_when_the_operator_wrote_one() -> None:
    status = ClusterStatus.model_validate(
        {
            "observedGeneration": 2,
            "workers": {"desired": 5, "running": 1},
            "workerGroups": [{"name": "gpu", "desired": 1}],  # "small" not counted yet
            "cost": {"hourlyUSD": "1.250000", "accruedUSD": "3"},
        }
    )
    used = usage_of(gpu_spec(), status)
    assert (used.workers, used.gpus, used.hourly_usd) == (5 + 1 + 4, 2, Decimal("1.25"))
    assert used.vcpu == Decimal(1 + 5 * 2 + 4) + 2


def test_usage_adds_up_and_becomes_the_status() -> None:
    total = usage_of(DaskAwsClusterSpec(), None) + Usage(
        hourly_usd=Decimal("0.1"), vcpu=Decimal("0.25")
    )
    assert total.as_status() == PolicyUsage(
        clusters=1,
        workers=1,
        vcpu=5.25,
        memory_mib=20480,
        gpus=0,
        hourly_usd=cost.money(DEFAULT_HOURLY + Decimal("0.1")),
    )
    assert total.as_status().wire()["memoryMiB"] == 20480


def test_a_cluster_whose_starting_size_costs_more_than_the_hourly_limit_is_refused() -> None:
    spot = DaskAwsClusterSpec(
        worker_groups=[
            {"name": "s", "capacity": "Spot", "replicas": 2, "cpu": 1024, "memory": 2048}
        ]
    )
    this = usage_of(spot, None)
    assert this.hourly_usd == DEFAULT_HOURLY + 2 * _table(1024, 2048, spot=True)
    roomy, tight = cost.money(this.hourly_usd + Decimal("0.01")), cost.money(this.hourly_usd / 2)
    assert exceeded(this, Usage(), limits(hourlyUSD=roomy)) == []
    (why,) = exceeded(this, Usage(), limits(hourlyUSD=tight))
    assert why.startswith("hourlyUSD:") and "would exceed the limit" in why


def test_exceeded_names_each_limit_this_cluster_adds_to() -> None:
    this = usage_of(gpu_spec(), None)
    others = Usage(clusters=2, workers=1, vcpu=Decimal(2), hourly_usd=Decimal("9"))
    eff = limits(clusters=2, workers=100, gpus=6, vcpu=20, memoryMiB=1_000_000, hourlyUSD="5")
    assert exceeded(this, others, eff) == [
        "clusters: 3 would exceed the limit 2 of policy team-a",
        "vcpu: 21 would exceed the limit 20 of policy team-a",
    ]  # gpus 6 of 6 is within; hourlyUSD is over, but this new cluster adds nothing to it
    assert (
        exceeded(this, Usage(), limits(gpus=5))[0]
        == "gpus: 6 would exceed the limit 5 of policy team-a"
    )
    assert exceeded(this, Usage(), limits(memoryMiB=1024))[0].startswith("memoryMiB: 116736 would")
    assert exceeded(this, Usage(), Effective()) == []


def test_clamp_lowers_to_what_the_workers_limit_leaves() -> None:
    spec = DaskAwsClusterSpec()
    counts, message = clamp(spec, {"": 12}, Usage(workers=2), limits(workers=10))
    assert counts == {"": 8}
    assert message == (
        "workers clamped from 12 to 8 by the workers limit 10 of policy team-a "
        "(2 used by other clusters)"
    )


def test_no_clamp_within_the_limits_nor_for_hourly_usd() -> None:
    spec = gpu_spec()
    desired = {"": 2, "gpu": 3, "small": 4}
    assert clamp(spec, desired, Usage(workers=1), limits(workers=10, gpus=6)) == (desired, None)
    pricey = Usage(hourly_usd=Decimal(1000))
    assert clamp(spec, desired, pricey, limits(hourlyUSD="1")) == (desired, None)


def test_clamp_lowers_the_last_groups_first() -> None:
    spec = gpu_spec()
    counts, message = clamp(spec, {"": 2, "gpu": 3, "small": 4}, Usage(), limits(workers=4))
    assert counts == {"": 2, "gpu": 2, "small": 0}
    assert message == (
        "workers clamped from 9 to 4 (workerGroups[gpu] from 3 to 2, workerGroups[small] from "
        "4 to 0) "
        "by the workers limit 4 of policy team-a (0 used by other clusters)"
    )


def test_clamp_lowers_only_groups_that_count_toward_the_limit() -> None:
    spec = gpu_spec()
    counts, message = clamp(spec, {"": 2, "gpu": 3, "small": 4}, Usage(gpus=1), limits(gpus=4))
    assert counts == {"": 2, "gpu": 1, "small": 4}  # "small" is last, but has no GPUs
    assert message is not None and "by the gpus limit 4 of policy team-a (1 used" in message


def test_clamp_by_vcpu_and_memory_counts_the_scheduler_and_rounds_up() -> None:
    spec = DaskAwsClusterSpec()  # workers 4 vCPU / 16 GiB, scheduler 1 vCPU / 4 GiB
    counts, _ = clamp(spec, {"": 10}, Usage(vcpu=Decimal("2.5")), limits(vcpu=20))
    assert counts == {"": 4}  # 2.5 + 1 + 4 x 4 = 19.5 <= 20; a fifth worker would not fit
    counts, message = clamp(
        spec,
        {"": 10},
        Usage(),
        effective(
            [
                ("a", DaskAwsPolicySpec.model_validate({"limits": {"memoryMiB": 70000}})),
                ("b", DaskAwsPolicySpec.model_validate({"limits": {"workers": 6}})),
            ]
        ),
    )
    assert counts == {"": 4}  # 4096 + 4 x 16384 = 69632
    assert message is not None and "memoryMiB limit 70000 of policy a" in message
    assert "workers limit 6 of policy b" in message


def test_clamp_reaches_zero_when_others_use_it_all_and_keeps_unknown_groups() -> None:
    spec = DaskAwsClusterSpec()
    counts, message = clamp(spec, {"": 3, "gone": 2}, Usage(workers=20), limits(workers=10))
    assert counts == {"": 0, "gone": 2}
    assert message is not None and message.startswith("workers clamped from 3 to 0")


def test_policy_status_reports_limits_at_and_near_their_value() -> None:
    spec = DaskAwsPolicySpec.model_validate({"limits": {"workers": 10, "vcpu": 64, "clusters": 9}})
    used = Usage(clusters=1, workers=10, vcpu=Decimal(60))
    assert limit_message(used, spec) == "at the limit: workers 10/10; near the limit: vcpu 60/64"
    status = policy_status(spec, used, generation=3)
    ready = status.conditions[0]
    assert (ready.type, ready.status, ready.reason) == (ConditionType.READY, "True", AT_LIMIT)
    assert status.observed_generation == 3 and status.used == used.as_status()
    calm = policy_status(spec, Usage(), 3, previous=status)
    assert calm.conditions[0].reason == WITHIN and calm.conditions[0].message == "within the limits"
    broken = policy_status(spec, used, 4, previous=calm, conflict="policies a and b both ...")
    assert (broken.conditions[0].status, broken.conditions[0].reason) == ("False", CONFLICT)
    assert len(broken.conditions) == 1
