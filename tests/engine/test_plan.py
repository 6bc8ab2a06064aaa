"""The plan is a pure function: its decisions are tested on hand-made observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dask_aws.aws.found import Found
from dask_aws.aws.network import Network
from dask_aws.aws.task_definitions import Refs
from dask_aws.aws.tasks import Task
from dask_aws.engine.observe import Observed
from dask_aws.engine.plan import INFRA, plan

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TD = {"scheduler": "arn:td/s:1", "worker": "arn:td/w:1"}


def task(
    n: int,
    role: str = "worker",
    status: str = "RUNNING",
    scheduler: str | None = "s0",
    age: int = 0,
    stop_code: str | None = None,
) -> Task:
    live = status != "STOPPED"
    return Task(
        arn=f"arn:aws:ecs:us-east-1:1:task/c/{role[0]}{n}",
        role=role,  # type: ignore[arg-type]
        last_status=status,
        desired_status="RUNNING" if live else "STOPPED",
        task_definition_arn=TD[role],
        ip=f"127.1.0.{n}" if status == "RUNNING" else None,
        scheduler_task_id=None if role == "scheduler" else scheduler,
        started_at=NOW - timedelta(minutes=age),
        stopped_at=None if live else NOW - timedelta(minutes=1),
        stop_code=stop_code,
        stopped_reason="Essential container exited" if stop_code else None,
        capacity_provider=None,
    )


def observed(tasks: list[Task], **found: Found | None) -> Observed:
    ok = Found("x", ours=True)
    return Observed(
        network=Network("vpc-1", ("subnet-1",)),
        refs=Refs("arn:exec", "arn:task", "/logs", "us-east-1"),
        cluster=found.get("cluster", ok),
        roles={"execution": ok, "task": ok},
        security_groups=[ok],
        log_group=ok,
        task_definitions={r: Found(TD[r], ours=True) for r in TD},
        tasks=tasks,
    )


SCHED = replace(task(0, "scheduler", age=60), arn="arn:aws:ecs:us-east-1:1:task/c/s0")


def test_empty_account_plans_every_resource_and_the_scheduler_only() -> None:
    empty = observed([])
    empty.cluster = None
    empty.task_definitions = {"scheduler": None, "worker": None}
    empty.roles = {"execution": None, "task": None}
    empty.security_groups, empty.log_group = [], None
    steps = plan(empty, 10, NOW)
    assert steps.ensure == list(INFRA)
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


def test_pending_scheduler_means_wait() -> None:
    starting = replace(SCHED, last_status="PENDING", ip=None)
    steps = plan(observed([starting]), 5, NOW)
    assert not steps.mutates
