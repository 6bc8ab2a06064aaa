"""The split of wanted workers between groups is a pure function: tested on hand-made demand."""

from __future__ import annotations

from dask_aws.engine.demand import UNRESTRICTED, Demand, Group, Restriction, label, split

GPU: Restriction = frozenset({("GPU", 1.0)})
CPU_SPOT = Group("spot", 0, 10, threads=4, capacity="Spot")
CPU_ON_DEMAND = Group("ondemand", 1, 10, threads=4, capacity="OnDemand")
GPU_GROUP = Group("gpu", 0, 4, resources={"GPU": 1.0}, threads=2, capacity="OnDemand")
ALL = [CPU_ON_DEMAND, GPU_GROUP, CPU_SPOT]


def wanting(target: int, **waiting: int) -> Demand:
    by_name = {"cpu": UNRESTRICTED, "gpu": GPU}
    return Demand(target=target, waiting={by_name[k]: n for k, n in waiting.items()})


def test_gpu_tasks_grow_only_the_gpu_group() -> None:
    result = split(ALL, wanting(4, gpu=3))
    assert result.targets["gpu"] == 3  # one GPU per worker: one task at a time each
    assert result.targets["spot"] == 0 and result.targets["ondemand"] == 1  # its minimum
    assert result.unplaceable == {}


def test_cpu_work_grows_spot_before_on_demand_and_leaves_the_gpu_group_at_its_minimum() -> None:
    result = split(ALL, wanting(8, cpu=40))
    # The on-demand minimum counts toward the target; Spot takes the rest.
    assert result.targets == {"ondemand": 1, "gpu": 0, "spot": 7}


def test_on_demand_grows_once_spot_is_at_its_maximum() -> None:
    result = split(ALL, wanting(14, cpu=100))
    assert result.targets == {"ondemand": 4, "gpu": 0, "spot": 10}


def test_gpu_group_takes_cpu_work_only_when_no_other_group_has_room() -> None:
    result = split(ALL, wanting(23, cpu=200))
    assert result.targets == {"ondemand": 10, "gpu": 3, "spot": 10}


def test_every_group_is_clamped_to_its_bounds() -> None:
    groups = [Group("a", 2, 3, capacity="Spot"), Group("g", 1, 2, resources={"GPU": 1.0})]
    assert split(groups, wanting(100, cpu=500, gpu=50)).targets == {"a": 3, "g": 2}
    assert split(groups, wanting(0)).targets == {"a": 2, "g": 1}


def test_no_demand_sends_every_group_to_its_minimum() -> None:
    assert split(ALL, Demand(target=0)).targets == {"ondemand": 1, "gpu": 0, "spot": 0}


def test_scale_down_follows_the_adaptive_target_most_expensive_first() -> None:
    # Was 10 Spot + 4 on demand; the scheduler now wants 6 workers in all.
    assert split(ALL, wanting(6, cpu=3)).targets == {"ondemand": 1, "gpu": 0, "spot": 5}


def test_restricted_work_claims_at_most_the_adaptive_target() -> None:
    # 50 short GPU tasks: the scheduler judges 2 workers enough, so 2 GPU workers, not 4.
    assert split(ALL, wanting(2, gpu=50)).targets["gpu"] == 2


def test_restricted_and_unrestricted_work_share_the_target() -> None:
    result = split(ALL, wanting(6, gpu=2, cpu=30))
    assert result.targets == {"ondemand": 1, "gpu": 2, "spot": 3}


def test_running_restricted_tasks_count_as_demand_too() -> None:
    demand = Demand(target=4, waiting={GPU: 1}, running={GPU: 2})
    assert split(ALL, demand).targets["gpu"] == 3


def test_a_worker_runs_as_many_restricted_tasks_as_its_amounts_fit() -> None:
    cpu = Group("cpu", 0, 100)  # no plain work: it stays at its minimum
    big = Group("big", 0, 10, resources={"GPU": 4.0}, threads=2)
    # Two threads cap it at 2 tasks at once though 4 GPUs would fit 4.
    assert split([big, cpu], wanting(10, gpu=8)).targets == {"big": 4, "cpu": 0}
    wide = Group("wide", 0, 10, resources={"GPU": 4.0}, threads=8)
    assert split([wide, cpu], wanting(10, gpu=8)).targets == {"wide": 2, "cpu": 0}
    halves = Demand(target=10, waiting={frozenset({("GPU", 0.5)}): 6})
    assert split([GPU_GROUP, cpu], halves).targets == {"gpu": 3, "cpu": 0}  # 2 halves each


def test_plain_workers_grow_only_for_plain_work_while_restricted_work_waits() -> None:
    cpu = Group("cpu", 0, 100, threads=2)
    gpu = Group("gpu", 0, 2, resources={"GPU": 1.0})
    # The target counts 8 GPU tasks the GPU group has no room for: no CPU worker runs them.
    assert split([gpu, cpu], wanting(10, gpu=8)).targets == {"gpu": 2, "cpu": 0}
    # 5 plain tasks on 2-thread workers keep 3 busy; the rest of the target is GPU work.
    mixed = Demand(target=10, waiting={GPU: 8, UNRESTRICTED: 5})
    assert split([gpu, cpu], mixed).targets == {"gpu": 2, "cpu": 3}


def test_restriction_no_group_offers_is_ignored_and_reported() -> None:
    tpu: Restriction = frozenset({("TPU", 1.0)})
    result = split(ALL, Demand(target=5, waiting={tpu: 7}))
    assert result.unplaceable == {tpu: 7}
    # Ignored by the restricted step; no plain work waits, so no group grows for it.
    assert result.targets == {"ondemand": 1, "gpu": 0, "spot": 0}
    assert label(tpu) == "TPU=1" and label(UNRESTRICTED) == "none"


def test_too_small_an_amount_does_not_qualify_a_group() -> None:
    two: Restriction = frozenset({("GPU", 2.0)})
    assert split([GPU_GROUP], Demand(target=3, waiting={two: 3})).unplaceable == {two: 3}


def test_restricted_work_overflows_to_the_next_group_that_offers_it() -> None:
    cheap = Group("cheap", 0, 2, resources={"GPU": 1.0}, capacity="Spot")
    dear = Group("dear", 0, 5, resources={"GPU": 1.0}, capacity="OnDemand")
    assert split([dear, cheap], wanting(5, gpu=5)).targets == {"dear": 3, "cheap": 2}


def test_cost_order_is_spot_then_fallback_then_on_demand_then_price_then_spec_order() -> None:
    groups = [
        Group("od", 0, 1, capacity="OnDemand", price=0.01),
        Group("fallback", 0, 1, capacity="SpotWithFallback"),
        Group("spot-unpriced", 0, 1, capacity="Spot"),
        Group("spot-dear", 0, 1, capacity="Spot", price=0.2),
        Group("spot-cheap", 0, 1, capacity="Spot", price=0.1),
        Group("spot-cheap-2", 0, 1, capacity="Spot", price=0.1),
    ]
    for target, grown in [(1, "spot-cheap"), (2, "spot-cheap-2"), (3, "spot-dear")]:
        assert split(groups, wanting(target, cpu=10)).targets[grown] == 1
    result = split(groups, wanting(5, cpu=10)).targets
    assert result["fallback"] == 1 and result["od"] == 0


def test_minimums_above_the_target_are_kept() -> None:
    groups = [Group("a", 3, 5), Group("b", 2, 5)]
    assert split(groups, wanting(1, cpu=1)).targets == {"a": 3, "b": 2}


def test_the_default_group_alone_follows_the_target_clamped() -> None:
    default = Group("", 1, 8, threads=4)
    assert split([default], Demand.total_only(5)).targets == {"": 5}
    assert split([default], Demand.total_only(50)).targets == {"": 8}
    assert split([default], Demand.total_only(0)).targets == {"": 1}


def test_demand_decodes_what_the_probe_returns() -> None:
    payload = {
        "target": 3,
        "waiting": (((), 40), ((("GPU", 1),), 3)),
        "running": ((((("GPU", 1)), ("MEM", 2.5)), 1),),
    }
    demand = Demand.from_wire(payload)
    assert demand.target == 3
    assert demand.waiting == {UNRESTRICTED: 40, GPU: 3}
    assert demand.running == {frozenset({("GPU", 1.0), ("MEM", 2.5)}): 1}
