"""The whole life of a cluster on the local AWS (simulated tasks): create, scale, delete."""

from __future__ import annotations

import math
import uuid
from typing import Any

from dask_aws.aws.found import Target
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from dask_aws.names import LOG_GROUP_PREFIX, Owner
from dask_aws.status import Phase
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import converge, target
from tests.fixtures.leaks import tagged_resources


def _scale(tgt: Target, replicas: int) -> Target:
    workers = tgt.spec.workers.model_copy(update={"replicas": replicas})
    return Target(tgt.owner, tgt.spec.model_copy(update={"workers": workers}))


def test_create_scale_up_scale_down_delete(local_aws_simulated: Any) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("lifecycle", workers={"replicas": 25, "cpu": 1024, "memory": 2048})

    mark = log.mark()
    result = converge(aws, tgt)
    assert result.status.phase is Phase.RUNNING
    assert result.status.replicas == 25
    assert result.status.scheduler_address and result.status.scheduler_address.startswith(
        "tls://127."
    )
    # One RunTask for the scheduler, then the workers in batches of at most 10.
    assert log.since(mark)["RunTask"] == 1 + math.ceil(25 / 10)

    mark = log.mark()
    noop = reconcile(aws, tgt)
    assert noop.ready and log.mutating_since(mark) == {}

    mark = log.mark()
    tgt = _scale(tgt, 40)
    result = converge(aws, tgt)
    assert result.status.replicas == 40
    assert log.since(mark)["RunTask"] <= math.ceil(15 / 10)

    mark = log.mark()
    tgt = _scale(tgt, 5)
    first = reconcile(aws, tgt)
    # Nothing listens in simulated mode: graceful retirement fell back, and status says so.
    assert first.status.message and "Could not retire 35 worker(s)" in first.status.message
    assert "RetireFallback" in [e.reason for e in first.events]
    result = converge(aws, tgt)
    assert result.status.replicas == 5
    assert log.since(mark)["StopTask"] == 35 and log.since(mark)["RunTask"] == 0
    live = aws.ecs.list_tasks(
        cluster=result.status.aws.cluster_arn, startedBy=tgt.owner.uid, desiredStatus="RUNNING"
    )
    assert len(live["taskArns"]) == 6

    assert delete(aws, tgt).done
    assert tagged_resources(aws, tgt.owner.uid) == []
    mark = log.mark()
    assert delete(aws, tgt).done  # idempotent: nothing left, nothing to do
    assert log.mutating_since(mark) == {}


def test_status_reports_every_aws_resource(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("status")
    status = converge(aws, tgt).status
    arns = status.aws
    assert arns.cluster_arn and ":cluster/" in arns.cluster_arn
    assert arns.execution_role_arn and arns.execution_role_arn.endswith("-exec")
    assert arns.task_role_arn and arns.task_role_arn.endswith("-task")
    assert arns.security_group_id and arns.security_group_id.startswith("sg-")
    assert arns.log_group and arns.log_group.startswith(LOG_GROUP_PREFIX)
    assert arns.scheduler_task_arn and arns.worker_task_definition_arn
    conditions = {c.type.value: c for c in status.conditions}
    assert conditions["Ready"].status == "True"
    assert conditions["Reconciling"].status == "False"
    assert conditions["Stalled"].status == "False"
    assert status.dashboard_address and status.dashboard_address.endswith(":8787/status")
    assert delete(aws, tgt).done


def test_security_group_is_closed_by_default_and_opens_only_what_is_asked(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    closed = target("closed")
    group_id = converge(aws, closed).status.aws.security_group_id
    group = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    sources = [r for p in group["IpPermissions"] for r in p.get("IpRanges", [])]
    assert sources == []  # members reach each other through the group; nobody else
    assert [p["UserIdGroupPairs"][0]["GroupId"] for p in group["IpPermissions"]] == [group_id]

    opened = Target(
        closed.owner,
        closed.spec.model_copy(
            update={
                "network": closed.spec.network.model_copy(
                    update={"allowed_client_cidrs": ["192.0.2.0/24"]}
                )
            }
        ),
    )
    converge(aws, opened)
    group = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    ports = sorted(
        p["FromPort"]
        for p in group["IpPermissions"]
        if any(r["CidrIp"] == "192.0.2.0/24" for r in p.get("IpRanges", []))
    )
    assert ports == [8786, 8787]
    assert delete(aws, opened).done


def test_image_change_replaces_scheduler_and_rolls_workers(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("roll", workers={"replicas": 3, "cpu": 1024, "memory": 2048})
    before = converge(aws, tgt).status
    changed = Target(tgt.owner, tgt.spec.model_copy(update={"image": "example/dask:2"}))
    after = converge(aws, changed).status
    assert after.aws.scheduler_task_arn != before.aws.scheduler_task_arn
    assert after.aws.worker_task_definition_arn != before.aws.worker_task_definition_arn
    assert after.replicas == 3
    live = aws.ecs.list_tasks(
        cluster=after.aws.cluster_arn, startedBy=tgt.owner.uid, desiredStatus="RUNNING"
    )["taskArns"]
    described = aws.ecs.describe_tasks(cluster=after.aws.cluster_arn, tasks=live)["tasks"]
    assert {t["taskDefinitionArn"] for t in described} == {
        after.aws.scheduler_task_definition_arn,
        after.aws.worker_task_definition_arn,
    }
    assert delete(aws, changed).done
    assert tagged_resources(aws, tgt.owner.uid) == []


def test_two_owners_with_the_same_name_never_share_resources(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    first = target("twin")
    second = Target(Owner(uid="other-uid", name="twin", namespace="team-a"), first.spec)
    a = converge(aws, first).status.aws
    b = converge(aws, second).status.aws
    assert a.cluster_arn != b.cluster_arn and a.task_role_arn != b.task_role_arn
    assert delete(aws, first).done
    assert tagged_resources(aws, first.owner.uid) == []
    assert reconcile(aws, second).ready  # the twin is untouched
    assert delete(aws, second).done


def test_lost_scheduler_is_replaced_and_workers_follow(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("phoenix", workers={"replicas": 3, "cpu": 1024, "memory": 2048})
    before = converge(aws, tgt).status
    local_aws_simulated.kill_task(before.aws.scheduler_task_arn)

    step = reconcile(aws, tgt)
    assert "SchedulerReplaced" in [e.reason for e in step.events]
    assert not step.ready
    after = converge(aws, tgt).status
    assert after.aws.scheduler_task_arn != before.aws.scheduler_task_arn
    assert after.scheduler_address != before.scheduler_address
    assert after.replicas == 3
    cluster = after.aws.cluster_arn
    live = aws.ecs.list_tasks(cluster=cluster, startedBy=tgt.owner.uid, desiredStatus="RUNNING")
    groups = [
        t["group"] for t in aws.ecs.describe_tasks(cluster=cluster, tasks=live["taskArns"])["tasks"]
    ]
    new_id = after.aws.scheduler_task_arn.rsplit("/", 1)[1]
    assert sorted(groups) == ["dask-aws:scheduler"] + [f"dask-aws:worker:{new_id}"] * 3
    assert delete(aws, tgt).done


def test_crashed_worker_is_replaced(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("mender", workers={"replicas": 2, "cpu": 1024, "memory": 2048})
    status = converge(aws, tgt).status
    cluster = status.aws.cluster_arn
    live = aws.ecs.list_tasks(cluster=cluster, startedBy=tgt.owner.uid, desiredStatus="RUNNING")
    worker = next(
        t
        for t in aws.ecs.describe_tasks(cluster=cluster, tasks=live["taskArns"])["tasks"]
        if t["group"].startswith("dask-aws:worker")
    )
    local_aws_simulated.kill_task(worker["taskArn"])
    step = reconcile(aws, tgt)
    assert "WorkerReplaced" in [e.reason for e in step.events]
    assert converge(aws, tgt).status.replicas == 2
    assert delete(aws, tgt).done


def test_longest_namespace_and_name_fit_every_aws_limit(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    owner = Owner(uid=str(uuid.uuid4()), name="n-" * 126 + "n", namespace="s" * 63)
    tgt = Target(owner, target().spec)
    assert converge(aws, tgt).ready  # the owner tag (namespace/name) is cut to 256 with a hash
    assert delete(aws, tgt).done
    assert tagged_resources(aws, owner.uid) == []


def test_deletion_stops_the_workers_before_their_scheduler(local_aws_simulated: Any) -> None:
    """A worker told to stop while its scheduler runs exits at once; one whose scheduler
    went first spends its stop timeout trying to reach it (close() took 10 s, not 2)."""
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("stop-order", workers={"replicas": 3, "cpu": 1024, "memory": 2048})
    result = converge(aws, tgt)
    scheduler = result.status.aws.scheduler_task_arn
    stopped: list[str] = []
    aws.ecs.meta.events.register(
        "before-parameter-build.ecs.StopTask", lambda params, **_: stopped.append(params["task"])
    )
    assert delete(aws, tgt, result.status.aws.created).done
    assert len(stopped) == 4 and stopped[-1] == scheduler
