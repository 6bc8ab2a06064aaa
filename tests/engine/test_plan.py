"""The plan is a pure function: its decisions are tested on hand-made observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from dask_aws.aws.tasks import Task
from dask_aws.engine.plan import Rollout, plan
from dask_aws.engine.resources import KEYS
from tests.fixtures.observations import NOW, SCHED, TD, observed, task


def test_empty_account_plans_every_resource_and_the_scheduler_only() -> None:
    empty = observed([])
    empty.found = dict.fromkeys(KEYS)
    steps = plan(empty, 10, NOW)
    assert steps.ensure == list(KEYS)
    assert steps.run_scheduler and steps.run_workers == 0  # workers need its address


def test_converged_cluster_plans_nothing() -> None:
    steps = plan(observed([SCHED, task(1), task(2)]), 2, NOW)
    assert not steps.mutates


def test_scale_down_retires_pending_first_then_newest() -> None:
    workers = [task(1, age=30), task(2, age=20), task(3, age=10), task(4, status="PENDING")]
    steps = plan(observed([SCHED, *workers]), 2, NOW)
    assert {t.arn for t in steps.retire} == {workers[3].arn, workers[2].arn}
    assert steps.run_workers == 0


def test_stopped_worker_is_replaced_and_reported() -> None:
    crashed = task(9, status="STOPPED", stop_code="EssentialContainerExited")
    steps = plan(observed([SCHED, task(1), crashed]), 2, NOW)
    assert steps.run_workers == 1 and steps.replacing_workers == [crashed]


def test_lost_scheduler_is_replaced_and_its_workers_rolled_over() -> None:
    lost = replace(
        SCHED, last_status="STOPPED", desired_status="STOPPED", stop_code="EssentialContainerExited"
    )
    workers = [task(1), task(2)]
    steps = plan(observed([lost, *workers]), 2, NOW)
    assert steps.run_scheduler and steps.replacing_scheduler == lost
    assert {t.arn for t, _ in steps.stop} == {w.arn for w in workers}


def test_duplicate_schedulers_keep_the_oldest() -> None:
    young = replace(task(5, "scheduler", age=1), arn="arn:aws:ecs:us-east-1:1:task/c/s5")
    steps = plan(observed([SCHED, young, task(1)]), 1, NOW)
    assert [t.arn for t, _ in steps.stop] == [young.arn]
    assert not steps.run_scheduler


def test_a_scheduler_without_an_address_yet_means_wait() -> None:
    starting = replace(SCHED, last_status="PROVISIONING", ip=None)
    steps = plan(observed([starting]), 5, NOW)
    assert not steps.mutates


def test_workers_start_while_the_first_scheduler_pulls_its_image() -> None:
    # PENDING with its interface attached: the address is known, the container not running.
    pulling = replace(SCHED, last_status="PENDING", ip="127.1.0.99")
    steps = plan(observed([pulling]), 5, NOW)
    assert steps.run_workers == 5 and steps.workers_for == pulling
    assert steps.scheduler is None  # not Ready, no address published, nothing asked of it


def test_after_a_scheduler_failed_the_next_one_runs_before_workers_start() -> None:
    failed = replace(
        task(7, "scheduler", status="STOPPED", stop_code="EssentialContainerExited"),
        arn="arn:aws:ecs:us-east-1:1:task/c/s7",
    )
    pulling = replace(SCHED, last_status="PENDING", ip="127.1.0.99")
    steps = plan(observed([failed, pulling]), 5, NOW)
    assert steps.run_workers == 0 and steps.workers_for is None
    running = plan(observed([failed, SCHED]), 5, NOW)
    assert running.run_workers == 5 and running.workers_for == SCHED


def failed_start(n: int, seconds_ago: int, definition: str = TD["worker"]) -> Task:
    stopped = NOW - timedelta(seconds=seconds_ago)
    return replace(
        task(n, status="STOPPED", stop_code="EssentialContainerExited"),
        started_at=stopped - timedelta(seconds=2),
        stopped_at=stopped,
        task_definition_arn=definition,
        exit_code=1,
    )


def test_a_worker_that_died_as_it_started_once_is_replaced_at_once() -> None:
    steps = plan(observed([SCHED, task(1), failed_start(9, seconds_ago=1)]), 2, NOW)
    assert steps.run_workers == 1 and steps.crash_loop is None


def test_each_further_failed_start_in_a_row_doubles_the_delay() -> None:
    two = [failed_start(7, seconds_ago=40), failed_start(8, seconds_ago=3)]
    steps = plan(observed([SCHED, task(1), *two]), 2, NOW)
    assert steps.run_workers == 0 and steps.retry_at == NOW + timedelta(seconds=7)
    assert plan(observed([SCHED, task(1), *two[:1], failed_start(8, 11)]), 2, NOW).run_workers
    three = [failed_start(6, seconds_ago=60), *two]
    assert plan(observed([SCHED, task(1), *three]), 2, NOW).retry_at == NOW + timedelta(seconds=17)


def test_four_failed_starts_stop_launching_and_name_the_reason() -> None:
    failures = [failed_start(n, seconds_ago=200 - n) for n in (5, 6, 7, 8)]
    steps = plan(observed([SCHED, task(1), *failures]), 2, NOW)
    assert steps.run_workers == 0 and steps.crash_loop is not None
    component, verdict = steps.crash_loop
    assert component == "worker" and verdict.failures == 4
    assert verdict.reason == "Essential container exited (exit code 1)"


def test_failures_of_an_older_definition_or_before_a_healthy_run_do_not_count() -> None:
    old = [failed_start(n, seconds_ago=30 + n, definition="arn:td/w:0") for n in (5, 6, 7, 8)]
    assert plan(observed([SCHED, task(1), *old]), 2, NOW).run_workers == 1
    before = [failed_start(n, seconds_ago=500 + n) for n in (5, 6, 7, 8)]
    healthy = replace(task(1), started_at=NOW - timedelta(seconds=300))
    assert plan(observed([SCHED, healthy, *before]), 2, NOW).run_workers == 1


def test_scheduler_that_dies_as_it_starts_is_not_relaunched_for_ever() -> None:
    dead = [
        replace(
            failed_start(n, seconds_ago=100 - n, definition=TD["scheduler"]),
            component="scheduler",
            scheduler_task_id=None,
        )
        for n in (1, 2, 3, 4)
    ]
    steps = plan(observed(dead), 2, NOW)
    assert not steps.run_scheduler and steps.crash_loop is not None
    assert steps.crash_loop[0] == "scheduler"


def outdated(n: int, age: int = 30) -> Task:
    return replace(task(n, age=age), task_definition_arn="arn:td/w:0")


def test_resize_starts_replacements_before_retiring_the_outdated_workers() -> None:
    old = [outdated(1), outdated(2)]
    steps = plan(observed([SCHED, *old]), 2, NOW)
    assert steps.retire == [] and steps.run_workers == 1  # surge of 1 (25 %, at least one)
    assert not steps.kept_workers and steps.outdated == old


def test_an_outdated_worker_is_retired_once_its_replacement_runs() -> None:
    old = [outdated(1, age=40), outdated(2, age=30)]
    steps = plan(observed([SCHED, task(3), *old]), 2, NOW)
    assert steps.retire == [old[0]] and steps.run_workers == 1  # oldest first
    pending = replace(task(4), last_status="PENDING", ip=None)
    waiting = plan(observed([SCHED, task(3), pending, old[1]]), 2, NOW)
    assert waiting.retire == [] and waiting.run_workers == 0  # still at two running
    done = plan(observed([SCHED, task(3), task(4), old[1]]), 2, NOW)
    assert done.retire == [old[1]] and done.run_workers == 0


def test_outdated_workers_that_are_not_running_yet_are_stopped_at_once() -> None:
    starting = replace(outdated(1), last_status="PENDING", ip=None)
    steps = plan(observed([SCHED, task(2), starting]), 2, NOW)
    assert steps.retire == [starting] and steps.run_workers == 1


def test_rollout_budget_allows_a_faster_roll() -> None:
    old = [outdated(n) for n in range(1, 5)]
    steps = plan(observed([SCHED, *old]), 4, NOW, rollout=Rollout(max_surge=4, max_unavailable=2))
    assert len(steps.retire) == 2 and steps.run_workers == 4


def test_a_replacement_counts_only_once_its_worker_has_joined_the_scheduler() -> None:
    old = [outdated(1, age=40), outdated(2, age=30)]
    fresh = task(3)
    seen = {w.ip for w in old if w.ip}
    steps = plan(observed([SCHED, fresh, *old]), 2, NOW, connected=seen)
    assert steps.retire == [] and steps.rolling  # task RUNNING, worker not joined yet
    joined = plan(observed([SCHED, fresh, *old]), 2, NOW, connected=seen | {fresh.ip or ""})
    assert joined.retire == [old[0]]


def test_plan_never_compares_tasks_pairwise_so_it_stays_linear(monkeypatch: Any) -> None:
    compared = 0
    equal = Task.__eq__

    def counting(self: Task, other: object) -> bool:
        nonlocal compared
        compared += 1
        return equal(self, other)

    monkeypatch.setattr(Task, "__eq__", counting)
    workers = [outdated(n) for n in range(1, 1000)] + [task(n) for n in range(1000, 3000)]
    steps = plan(observed([SCHED, *workers]), 1500, NOW, retire_first={"127.1.0.5"})
    assert len(steps.retire) > 0
    assert compared < 100  # `task in list` over thousands of workers would be millions
