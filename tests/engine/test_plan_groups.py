"""Worker groups in the plan (a pure function): each named group is planned on its own, next
to the default one (""), on hand-made observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dask_aws.aws.tasks import Task
from dask_aws.engine.plan import Rollout, plan
from dask_aws.engine.resources import task_definition_key
from tests.fixtures.observations import NOW, SCHED, group_td, observed, task


def spot_interrupted(n: int, group: str) -> Task:
    """A worker whose Spot interruption is under way: ECS wants it stopped, it still runs."""
    return replace(
        task(n, group=group, age=30),
        desired_status="STOPPED",
        stop_code="SpotInterruption",
        stopped_reason="Your Spot Task was interrupted.",
        stopped_at=None,
    )


def failed_start(n: int, group: str, seconds_ago: int) -> Task:
    stopped = NOW - timedelta(seconds=seconds_ago)
    return replace(
        task(n, status="STOPPED", stop_code="EssentialContainerExited", group=group),
        started_at=stopped - timedelta(seconds=2),
        stopped_at=stopped,
        exit_code=1,
    )


def test_each_group_scales_to_its_own_count() -> None:
    default = [task(1, age=30), task(2, age=20), task(3, age=10)]
    spot = [task(11, group="spot")]
    steps = plan(observed([SCHED, *default, *spot], groups=["spot"]), {"": 1, "spot": 3}, NOW)
    # The default group scales down (newest first); the spot group scales up by two.
    assert {t.arn for t in steps.retire} == {default[1].arn, default[2].arn}
    assert steps.groups[""].run == 0 and steps.groups[""].kept == [default[0]]
    assert steps.groups["spot"].run == 2 and steps.groups["spot"].kept == spot
    assert steps.groups["spot"].desired == 3 and steps.run_workers == 2
    assert steps.stop == []


def test_a_group_at_its_count_is_left_alone_while_another_scales() -> None:
    default = [task(1), task(2)]
    spot = [task(11, group="spot"), task(12, group="spot")]
    steps = plan(observed([SCHED, *default, *spot], groups=["spot"]), {"": 5, "spot": 2}, NOW)
    assert steps.groups[""].run == 3 and steps.groups["spot"].run == 0
    assert steps.retire == [] and steps.groups["spot"].kept == spot


def test_a_group_left_out_of_the_desired_counts_wants_none() -> None:
    spot = [task(11, group="spot"), task(12, group="spot")]
    steps = plan(observed([SCHED, task(1), *spot], groups=["spot"]), {"": 1, "spot": 0}, NOW)
    assert {t.arn for t in steps.retire} == {w.arn for w in spot}
    assert steps.groups["spot"].kept == []


def test_workers_of_a_group_removed_from_the_spec_are_stopped_and_say_why() -> None:
    gone = [task(11, group="old"), task(12, group="old", status="PENDING")]
    steps = plan(observed([SCHED, task(1), *gone], groups=["old"]), {"": 1}, NOW)
    assert {t.arn for t, _ in steps.stop} == {w.arn for w in gone}
    assert {why for _, why in steps.stop} == {"dask-aws: worker group removed from the spec"}
    assert "old" not in steps.groups and steps.retire == [] and steps.run_workers == 0


def test_an_interrupted_spot_worker_is_replaced_in_the_same_step_and_reported() -> None:
    interrupted = spot_interrupted(11, "spot")
    steady = task(12, group="spot")
    steps = plan(
        observed([SCHED, task(1), steady, interrupted], groups=["spot"]), {"": 1, "spot": 2}, NOW
    )
    spot = steps.groups["spot"]
    assert interrupted.interrupted and not interrupted.live
    assert spot.kept == [steady]  # the interrupted one no longer counts
    assert spot.run == 1  # its replacement starts now, not after it has stopped
    assert spot.replacing == [interrupted] and spot.interrupted == [interrupted]
    assert steps.groups[""].run == 0 and steps.groups[""].interrupted == []
    # It stops on its own (ECS's SIGTERM, then it drains): nothing stops or retires it.
    assert steps.stop == [] and steps.retire == []


def test_a_crash_loop_in_one_group_stalls_that_group_only() -> None:
    failures = [failed_start(n, "gpu", seconds_ago=200 - n) for n in (11, 12, 13, 14)]
    steps = plan(observed([SCHED, task(1), *failures], groups=["gpu"]), {"": 3, "gpu": 2}, NOW)
    assert steps.groups["gpu"].run == 0
    assert steps.groups[""].run == 2  # the default group keeps growing
    assert steps.crash_loop is not None
    what, verdict = steps.crash_loop
    assert what == "worker group gpu" and verdict.failures == 4
    assert verdict.reason == "Essential container exited (exit code 1)"


def test_failed_starts_of_the_default_group_do_not_hold_back_a_named_group() -> None:
    failures = [failed_start(n, "", seconds_ago=200 - n) for n in (5, 6, 7, 8)]
    steps = plan(observed([SCHED, *failures], groups=["spot"]), {"": 1, "spot": 2}, NOW)
    assert steps.groups[""].run == 0 and steps.groups["spot"].run == 2
    assert steps.crash_loop is not None and steps.crash_loop[0] == "worker"


def test_a_groups_outdated_workers_roll_with_that_groups_budget() -> None:
    def old(n: int, group: str) -> Task:
        definition = group_td(group, 0) if group else "arn:td/w:0"
        return replace(task(n, group=group, age=30), task_definition_arn=definition)

    default = [old(n, "") for n in (1, 2, 3, 4)]
    spot = [old(n, "spot") for n in (11, 12, 13, 14)]
    budgets = {"": Rollout(max_surge=1, max_unavailable=0), "spot": Rollout(4, 2)}
    desired = {"": 4, "spot": 4}
    steps = plan(observed([SCHED, *default, *spot], groups=["spot"]), desired, NOW, rollout=budgets)
    assert steps.groups[""].run == 1 and steps.groups[""].outdated == default
    assert steps.groups["spot"].run == 4 and len(steps.groups["spot"].outdated) == 2
    retired = {t.arn for t in steps.retire}
    assert len(retired) == 2 and retired <= {w.arn for w in spot}  # none of the default group's
    assert steps.groups[""].rolling and steps.groups["spot"].rolling


def test_a_change_to_one_group_rolls_that_group_only() -> None:
    default = [task(1), task(2)]
    spot = [
        replace(task(n, group="spot", age=30), task_definition_arn=group_td("spot", 0))
        for n in (11, 12)
    ]
    steps = plan(observed([SCHED, *default, *spot], groups=["spot"]), {"": 2, "spot": 2}, NOW)
    assert steps.groups[""].kept == default and not steps.groups[""].rolling
    assert steps.groups["spot"].rolling and steps.groups["spot"].outdated == spot
    assert steps.groups["spot"].run == 1 and steps.groups[""].run == 0


def test_a_group_whose_task_definition_is_due_waits_for_it_and_its_workers_roll() -> None:
    seen = observed([SCHED, task(1), task(11, group="spot")], groups=["spot"])
    seen.found[task_definition_key("worker", "spot")] = None  # not registered yet
    steps = plan(seen, {"": 1, "spot": 1}, NOW)
    assert steps.ensure == [task_definition_key("worker", "spot")]
    assert steps.groups["spot"].rolling and not steps.groups[""].rolling
