"""A Fargate vCPU quota smaller than the cluster: what fits runs, and the status says why the
rest does not (on the shared simulated local AWS, its quota lowered for the test)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.engine.act import capacity_reason
from dask_aws.engine.delete import delete
from dask_aws.engine.events import CAPACITY_LIMITED
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.local import LocalAws
from dask_aws.local.quotas import VCPU_LIMIT_REASON
from dask_aws.status import ClusterStatus, ConditionType, Phase
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import target

ACCOUNT_REGION = "123456789012/us-east-1"


@pytest.fixture
def vcpu_quota(local_aws_simulated: LocalAws) -> Iterator[Any]:
    """Sets the on-demand quota to N vCPUs more than the shared server's tasks use now;
    puts the previous quota back afterwards."""
    before = local_aws_simulated.quotas()

    def room(vcpu: float) -> None:
        used = local_aws_simulated.quotas()["usageVcpu"].get(ACCOUNT_REGION, {})
        local_aws_simulated.set_quotas(fargate_vcpu=used.get("FARGATE", 0.0) + vcpu)

    try:
        yield room
    finally:
        local_aws_simulated.set_quotas(fargate_vcpu=before["fargateOnDemandVcpu"])


def _ready_reason(status: ClusterStatus) -> tuple[str, str]:
    ready = status.condition(ConditionType.READY)
    assert ready is not None
    return ready.reason, ready.message


def test_a_vcpu_quota_smaller_than_the_cluster(local_aws_simulated: Any, vcpu_quota: Any) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    # 1 vCPU scheduler + 7 workers of 1 vCPU, with room for 4 vCPUs: the scheduler and 3 workers.
    tgt = target("quota", workers={"replicas": 7, "cpu": 1024, "memory": 2048})
    vcpu_quota(4)
    status = ClusterStatus()
    events: list[Any] = []

    def step() -> Result:
        nonlocal status
        result = reconcile(aws, tgt, previous=status)
        assert result.error is None, result.error
        status = result.status
        events.extend(result.events)
        return result

    try:
        for _ in range(20):
            result = step()
            if status.workers and status.workers.running == 3:
                break
            time.sleep(0.1)
        reason, message = _ready_reason(status)
        assert status.workers.running == 3 and status.replicas == 3
        assert status.phase is Phase.SCALING and not result.ready
        assert reason == CAPACITY_LIMITED
        assert "3/7 workers running" in message
        assert f"AWS refused 4 more worker task(s): {VCPU_LIMIT_REASON}" in message
        assert "(Fargate vCPU quota)" in message
        assert status.message and VCPU_LIMIT_REASON in status.message
        assert status.message.count(VCPU_LIMIT_REASON) == 1  # not once per refused task
        reconciling = status.condition(ConditionType.RECONCILING)
        assert reconciling and reconciling.status == "True"
        assert reconciling.reason == CAPACITY_LIMITED
        warnings = [e for e in events if e.reason == CAPACITY_LIMITED]
        assert len(warnings) == 1 and warnings[0].type == "Warning"
        assert VCPU_LIMIT_REASON in warnings[0].message

        # Steps go on at their usual pace: RunTask asked again each time, the 3 running
        # workers kept, no new Warning for the same refusal.
        workers = _worker_arns(aws, status)
        mark = log.mark()
        for _ in range(3):
            result = step()
            # Requeued like any step short of Ready: neither given up nor a tight loop.
            assert result.requeue_after is not None and result.requeue_after >= 0.2
        calls = log.mutating_since(mark)
        assert calls == Counter({"RunTask": 3}), calls
        assert _worker_arns(aws, status) == workers
        assert [e for e in events if e.reason == CAPACITY_LIMITED] == warnings
        assert _ready_reason(status)[0] == CAPACITY_LIMITED

        # More quota: the next step starts the rest, and the cluster becomes Ready.
        vcpu_quota(4 + 4)
        result = step()
        assert "WorkersStarted" in [e.reason for e in result.events]
        assert _ready_reason(status)[0] != CAPACITY_LIMITED
        for _ in range(20):
            if step().ready:
                break
            time.sleep(0.1)
        assert result.ready or status.ready
        assert status.workers.running == 7 and status.message is None
        assert _ready_reason(status)[0] == "Running"
        assert workers <= _worker_arns(aws, status)
    finally:
        assert delete(aws, tgt).done


def _worker_arns(aws: Any, status: ClusterStatus) -> set[str]:
    cluster = status.aws.cluster_arn
    live = aws.ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=live)["tasks"] if live else []
    return {t["taskArn"] for t in tasks if t["group"].startswith("dask-aws:worker")}


def test_which_runtask_failures_are_capacity() -> None:
    instance = "arn:aws:ecs:us-east-1:123456789012:container-instance/c/0123"
    assert capacity_reason(f"{instance} RESOURCE:MEMORY") == (
        "RESOURCE:MEMORY (the cluster's instances lack the resource)"
    )
    assert capacity_reason(VCPU_LIMIT_REASON) == f"{VCPU_LIMIT_REASON} (Fargate vCPU quota)"
    assert capacity_reason(f"{instance} MISSING") is None
    assert capacity_reason("ATTRIBUTE") is None
