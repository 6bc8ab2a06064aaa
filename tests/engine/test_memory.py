"""A quiet step reads only the tasks; infrastructure is read again on a spec change, after an
error, and once the drift period has passed, which then repairs drift (engine/memory.py)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.aws.found import Target
from dask_aws.aws.iam_roles import TRUST_POLICY as TRUST
from dask_aws.engine.memory import Memory
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.spec import DaskAwsClusterSpec
from tests.fixtures.aws_clients import CallLog, aws_for
from tests.fixtures.engine import Cleanup, target
from tests.fixtures.polling import wait_for


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    made = Cleanup()
    yield made
    made.delete_all()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def converge(aws: Any, tgt: Target, memory: Memory) -> Result:
    def step() -> Result | None:
        result = reconcile(aws, tgt, memory=memory)
        assert result.error is None, result.error.message
        return result if result.ready else None

    return wait_for(step, 60, "Ready", interval=0.1)


def quiet_calls(aws: Any, log: CallLog, tgt: Target, memory: Memory) -> Counter[str]:
    mark = log.mark()
    result = reconcile(aws, tgt, memory=memory)
    assert result.ready and result.error is None
    return log.since(mark)


def with_spec(tgt: Target, **changes: Any) -> Target:
    data = tgt.spec.model_dump(by_alias=True)
    data.update(changes)
    return Target(tgt.owner, DaskAwsClusterSpec.model_validate(data))


def test_a_quiet_step_reads_only_the_tasks(local_aws_simulated: Any, cleanup: Cleanup) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = (
        cleanup(aws, target("quiet", workers={"replicas": 3, "cpu": 1024, "memory": 2048})),
        Memory(),
    )
    converge(aws, tgt, memory)
    full = log.since(0)
    assert full["GetRole"] >= 2 and full["DescribeSecurityGroups"] >= 1

    for _ in range(3):
        assert quiet_calls(aws, log, tgt, memory) == Counter({"ListTasks": 1, "DescribeTasks": 1})


def test_scaling_is_not_a_reason_to_read_the_roles_again(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = cleanup(aws, target("scale")), Memory()
    converge(aws, tgt, memory)
    mark = log.mark()
    converge(aws, with_spec(tgt, workers={"replicas": 4, "cpu": 1024, "memory": 2048}), memory)
    calls = log.since(mark)
    assert calls["RunTask"] == 1
    assert not {c for c in calls if c.startswith(("GetRole", "DescribeSecurityGroups"))}


def test_a_spec_change_reads_everything_again(local_aws_simulated: Any, cleanup: Cleanup) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = cleanup(aws, target("changed")), Memory()
    converge(aws, tgt, memory)
    mark = log.mark()
    converge(aws, with_spec(tgt, tags={"team": "a"}), memory)
    assert log.since(mark)["GetRole"] >= 2


def test_a_deleted_rule_is_repaired_after_the_drift_period(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    clock = Clock()
    tgt, memory = cleanup(aws, target("drift")), Memory(drift_seconds=600, clock=clock)
    ready = converge(aws, tgt, memory)
    group = ready.status.aws.security_group_id
    assert group is not None
    rules = aws.ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group]}]
    )["SecurityGroupRules"]
    ingress = [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]]
    assert ingress
    aws.ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=ingress)

    clock.now += 599
    assert quiet_calls(aws, log, tgt, memory) == Counter({"ListTasks": 1, "DescribeTasks": 1})

    clock.now += 1
    mark = log.mark()
    repaired = reconcile(aws, tgt, memory=memory)
    assert repaired.error is None
    assert "security-group" in repaired.ensured
    assert log.mutating_since(mark)["AuthorizeSecurityGroupIngress"] >= 1
    assert [e.reason for e in repaired.events] == ["Repaired"]
    assert quiet_calls(aws, log, tgt, memory) == Counter({"ListTasks": 1, "DescribeTasks": 1})


def test_a_spec_may_shorten_its_own_drift_period(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    clock = Clock()
    tgt = cleanup(aws, target("short", driftPeriodSeconds=60))
    memory = Memory(drift_seconds=600, clock=clock)
    converge(aws, tgt, memory)
    clock.now += 61
    mark = log.mark()
    assert reconcile(aws, tgt, memory=memory).ready
    assert log.since(mark)["GetRole"] >= 2


def test_a_task_stopped_between_quiet_steps_is_replaced_at_once(
    local_aws_simulated: Any,
    cleanup: Cleanup,
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = (
        cleanup(aws, target("lost", workers={"replicas": 2, "cpu": 1024, "memory": 2048})),
        Memory(),
    )
    ready = converge(aws, tgt, memory)
    cluster = ready.status.aws.cluster_arn
    workers = [
        t["taskArn"]
        for t in aws.ecs.describe_tasks(
            cluster=cluster,
            tasks=aws.ecs.list_tasks(cluster=cluster, startedBy=tgt.owner.uid)["taskArns"],
        )["tasks"]
        if t["group"].startswith("dask-aws:worker")
    ]
    aws.ecs.stop_task(cluster=cluster, task=workers[0], reason="stopped behind its back")
    mark = log.mark()
    result = reconcile(aws, tgt, memory=memory)
    assert log.since(mark) == Counter({"ListTasks": 1, "DescribeTasks": 1, "RunTask": 1})
    assert [e.reason for e in result.events] == ["WorkersStarted"]


def test_an_aws_error_makes_the_next_step_read_everything(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = cleanup(aws, target("gone")), Memory()
    ready = converge(aws, tgt, memory)
    cluster = ready.status.aws.cluster_arn
    assert cluster is not None
    arns = aws.ecs.list_tasks(cluster=cluster)["taskArns"]
    for arn in arns:
        aws.ecs.stop_task(cluster=cluster, task=arn)
    wait_for(
        lambda: not aws.ecs.list_tasks(cluster=cluster)["taskArns"] or None, 20, "tasks stopped"
    )
    aws.ecs.delete_cluster(cluster=cluster)

    failed = reconcile(aws, tgt, memory=memory)
    assert failed.error is not None
    mark = log.mark()
    converge(aws, tgt, memory)
    assert log.mutating_since(mark)["CreateCluster"] == 1


def test_the_step_that_sees_the_scheduler_running_starts_the_workers(
    local_aws_simulated: Any,
    cleanup: Cleanup,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt, memory = cleanup(aws, target("prompt")), Memory()
    steps: list[Result] = []
    while not (steps and steps[-1].ready):
        steps.append(reconcile(aws, tgt, memory=memory))
        assert len(steps) < 50 and steps[-1].error is None
    first_seen = next(s for s in steps if s.status.scheduler_address)
    assert "WorkersStarted" in [e.reason for e in first_seen.events]


def test_while_tasks_start_the_pause_is_short_then_grows() -> None:
    memory = Memory()
    pauses = [memory.next_pause(progressed) for progressed in (True, False, False, False, False)]
    assert pauses == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert memory.next_pause(True) == 0.25


OWN_READS = {
    "DescribeClusters",
    "DescribeSecret",
    "GetRole",
    "DescribeSecurityGroups",
    "DescribeLogGroups",
    "DescribeTaskDefinition",
    "ListTasks",
}


def test_a_new_owners_first_step_looks_for_nothing_of_its_own(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, target("fresh"))
    first = reconcile(aws, tgt, memory=Memory(new_owner=True))
    assert first.error is None and first.created
    calls = log.since(0)
    assert not OWN_READS & set(calls), calls
    assert calls["CreateCluster"] == calls["CreateRole"] // 2 == 1
    assert calls["RunTask"] == 1


def test_a_new_owner_still_checks_what_the_spec_names(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    role = "arn:aws:iam::123456789012:role/not-there"
    first = reconcile(
        aws, cleanup(aws, target("named", iam={"taskRoleArn": role})), memory=Memory(new_owner=True)
    )
    assert first.error is not None and first.error.reason == "RoleNotFound"
    assert log.since(0)["GetRole"] == 1


def test_after_a_failed_first_step_a_new_owner_reads_everything(
    local_aws_simulated: Any, cleanup: Cleanup
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    name = f"later-{uuid.uuid4().hex[:8]}"
    role = f"arn:aws:iam::123456789012:role/{name}"
    tgt, memory = cleanup(aws, target("retry", iam={"taskRoleArn": role})), Memory(new_owner=True)
    assert reconcile(aws, tgt, memory=memory).error is not None
    aws.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    mark = log.mark()
    converge(aws, tgt, memory)
    calls = log.since(mark)
    assert calls["DescribeClusters"] >= 1 and calls["GetRole"] >= 2
