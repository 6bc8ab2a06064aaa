"""An owner only this process knows (the library's) trusts its own task starts: its steps
describe the tasks it started and list none, and its deletion stops them without a listing;
a task the knowledge missed is still found, because AWS will not delete a cluster that runs
one and the retry lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.aws import network
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.found import Target
from dask_aws.cluster.cleanup import Teardown
from dask_aws.engine.delete import delete
from dask_aws.engine.memory import Memory
from dask_aws.engine.orphans import KnownTasks
from dask_aws.engine.reconcile import Result, reconcile
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import Cleanup, target
from tests.fixtures.leaks import tagged_resources

SMALL = {"replicas": 2, "cpu": 1024, "memory": 2048}


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    made = Cleanup()
    yield made
    made.delete_all()


def converge(aws: Any, tgt: Target, memory: Memory) -> list[Result]:
    steps = [reconcile(aws, tgt, memory=memory)]
    while not steps[-1].ready:
        assert steps[-1].error is None, steps[-1].error.message
        assert len(steps) < 50, "not Ready after 50 steps"
        steps.append(reconcile(aws, tgt, memory=memory))
    return steps


def known(memory: Memory, ready: Result) -> KnownTasks:
    found = ready.status.aws
    assert memory.seen is not None and found.cluster_arn
    return KnownTasks.of(found.cluster_arn, memory.seen.live, found.scheduler_task_arn)


def live_tasks(aws: Any, tgt: Target, cluster_arn: str) -> list[str]:
    return ecs_tasks.started_by(aws, cluster_arn, tgt.owner.uid, stopped=False)


def test_a_library_owner_lists_no_task_and_still_replaces_a_lost_worker(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = cleanup(aws, target("sole", workers=SMALL)), Memory(new_owner=True)
    ready = converge(aws, tgt, memory)[-1]
    assert log.since(0)["ListTasks"] == 0

    mark = log.mark()
    assert reconcile(aws, tgt, memory=memory).ready
    assert log.since(mark) == {"DescribeTasks": 1}

    cluster = ready.status.aws.cluster_arn
    worker = next(a for a in known(memory, ready).workers)
    aws.ecs.stop_task(cluster=cluster, task=worker, reason="stopped behind its back")
    mark = log.mark()
    result = reconcile(aws, tgt, memory=memory)
    assert log.since(mark) == {"DescribeTasks": 1, "RunTask": 1}
    assert [e.reason for e in result.events] == ["WorkersStarted"]


def test_deleting_known_tasks_lists_nothing_and_leaves_nothing(
    local_aws_simulated: Any,
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = target("sole-delete", workers=SMALL), Memory(new_owner=True)
    ready = converge(aws, tgt, memory)[-1]
    tasks = known(memory, ready)
    assert len(tasks.workers) == 2 and tasks.scheduler

    mark = log.mark()
    result = delete(aws, tgt, ready.status.aws.created, discover=False, tasks=tasks)
    assert result.done, result.error
    calls = log.since(mark)
    assert "ListTasks" not in calls and calls["StopTask"] == 3
    assert tagged_resources(aws, tgt.owner.uid) == []
    assert live_tasks(aws, tgt, tasks.cluster_arn) == []


def test_a_task_the_knowledge_missed_is_stopped_on_the_retry(
    local_aws_simulated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dask_aws.cluster.cleanup.RETRY_DELAY", 0.1)
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = target("sole-missed", workers=SMALL), Memory(new_owner=True)
    ready = converge(aws, tgt, memory)[-1]
    found = ready.status.aws
    assert found.cluster_arn and found.worker_task_definition_arn and found.security_group_id
    # One the library never heard of: as if a RunTask answer had been lost on the way.
    missed = ecs_tasks.run(
        aws,
        tgt,
        found.cluster_arn,
        found.worker_task_definition_arn,
        "worker",
        1,
        network.observe(aws, tgt),
        [found.security_group_id],
    ).started
    assert len(missed) == 1

    teardown = Teardown(aws, tgt, timeout=60)
    teardown.known, teardown.tasks = list(found.created), known(memory, ready)
    mark = log.mark()
    teardown()
    calls = log.since(mark)
    assert calls["ListTasks"] >= 1  # the retry, after DeleteCluster refused
    assert tagged_resources(aws, tgt.owner.uid) == []
    assert live_tasks(aws, tgt, found.cluster_arn) == []


def test_the_default_network_is_the_default_subnets_read_in_one_call(
    local_aws_simulated: Any,
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    extra = aws.ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="172.31.250.0/24")["Subnet"]
    try:
        mark = log.mark()
        found = network.locate(aws, target("default-net"))
        assert log.since(mark) == {"DescribeSubnets": 1}
        assert found.vpc_id == vpc["VpcId"]
        assert extra["SubnetId"] not in found.subnets
        defaults = aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
            "Subnets"
        ]
        assert set(found.subnets) == {s["SubnetId"] for s in defaults if s["DefaultForAz"]}
    finally:
        aws.ec2.delete_subnet(SubnetId=extra["SubnetId"])


@pytest.mark.parametrize(
    ("registered", "scheduler_waits"),
    [(2, False), (1, True), (None, True)],
    ids=["all-registered", "one-starting", "cluster-gone"],
)
def test_the_scheduler_outlives_workers_that_may_still_be_starting(
    local_aws_simulated: Any, registered: int | None, scheduler_waits: bool
) -> None:
    # A nanny told to stop while its worker starts waits for the worker to register; with
    # its scheduler stopped in the same breath it cannot, and the task waits out its stop
    # timeout. So unless the scheduler has every worker, it is stopped once they are.
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = target(f"sole-order-{registered}".lower(), workers=SMALL), Memory(new_owner=True)
    ready = converge(aws, tgt, memory)[-1]
    tasks = known(memory, ready)
    stopped: list[str] = []
    aws.ecs.meta.events.register(
        "provide-client-params.ecs.StopTask", lambda params, **_: stopped.append(params["task"])
    )
    teardown = Teardown(aws, tgt, timeout=60)
    teardown.known, teardown.tasks = list(ready.status.aws.created), tasks
    teardown.registered_workers = lambda: registered
    mark = log.mark()
    teardown()

    assert stopped == [*tasks.workers, tasks.scheduler]
    calls = [c for c in log.calls[mark:] if c in ("StopTask", "DescribeTasks")]
    before_scheduler = calls[: len(tasks.workers) + 1]
    assert ("DescribeTasks" in before_scheduler) is scheduler_waits, calls
    assert tagged_resources(aws, tgt.owner.uid) == []
