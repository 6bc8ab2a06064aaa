"""AWS misbehaving: throttling is absorbed by botocore's retry mode, Spot capacity shortfalls
fall back to on-demand, and errors that outlast the retries surface with AWS's text."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from typing import Any

from botocore.config import Config

from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import converge, target


def _attempts(session: Any) -> list[str]:
    sent: list[str] = []
    session.events.register(
        "before-send.ecs.RunTask", lambda request, **_: sent.append(request.url)
    )
    return sent


def test_throttled_run_task_is_retried_by_botocore(local_aws_simulated: Any) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    sent = _attempts(aws.session)
    tgt = target("throttled", workers={"replicas": 4, "cpu": 1024, "memory": 2048})
    local_aws_simulated.fail_next("ecs:RunTask", 3, "throttle")
    status = converge(aws, tgt).status
    assert status.replicas == 4
    assert log.calls.count("RunTask") == 2  # one call for the scheduler, one for the workers
    assert len(sent) == 5  # ... and three throttled attempts retried underneath
    assert delete(aws, tgt).done


def test_spot_capacity_shortfall_falls_back_to_on_demand(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("spotty", workers={"replicas": 3, "cpu": 1024, "memory": 2048, "spot": True})
    local_aws_simulated.capacity_failures(2, "FARGATE_SPOT")
    events: list[str] = []
    for _ in range(50):
        result = reconcile(aws, tgt)
        events += [e.reason for e in result.events]
        if result.ready:
            break
        time.sleep(0.2)
    assert result.ready and "SpotFallback" in events
    assert result.status.replicas == 3
    cluster = result.status.aws.cluster_arn
    live = aws.ecs.list_tasks(cluster=cluster, startedBy=tgt.owner.uid, desiredStatus="RUNNING")
    tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=live["taskArns"])["tasks"]
    providers = sorted(
        t.get("capacityProviderName") or t.get("launchType", "")
        for t in tasks
        if t["group"].startswith("dask-aws:worker")
    )
    assert providers.count("FARGATE_SPOT") == 1 and len(providers) == 3
    assert delete(aws, tgt).done


def test_errors_outlasting_retries_are_reported_with_aws_text(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    retries: Any = {"mode": "standard", "total_max_attempts": 2}
    aws.config = aws.config.merge(type(aws.config)(retries=retries))
    tgt = target("flaky")
    local_aws_simulated.fail_next("iam:CreateRole", 2, "5xx")
    result = reconcile(aws, tgt)
    assert result.error is not None and "CreateRole" in result.error.message
    assert result.requeue_after is not None  # transient: retried with backoff
    reconciling = [c for c in result.status.conditions if c.type.value == "Reconciling"]
    assert reconciling and reconciling[0].status == "True"
    assert converge(aws, tgt).ready
    assert delete(aws, tgt).done


def test_aws_refusing_a_spec_value_stalls_instead_of_retrying(local_aws_simulated: Any) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    missing = "arn:aws:iam::123456789012:policy/does-not-exist"
    tgt = target("nopolicy", iam={"taskRolePolicies": [missing]})
    result = reconcile(aws, tgt)
    assert result.error is not None and result.requeue_after is None  # not retried
    assert "AttachRolePolicy failed (NoSuchEntity)" in result.error.message
    assert missing in result.error.message  # AWS's own text names the policy
    stalled = [c for c in result.status.conditions if c.type.value == "Stalled"]
    assert stalled and stalled[0].status == "True"
    assert "RunTask" not in log.calls
    assert delete(aws, tgt).done


def test_unknown_region_stalls_without_a_call_and_deletes_at_once(
    local_aws_simulated: Any,
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    nowhere = aws.in_region("us-esat-1")  # a typo botocore would send to a missing endpoint
    tgt = target("typo", region="us-esat-1")
    result = reconcile(nowhere, tgt)
    assert result.error is not None and result.error.reason == "UnknownRegion"
    assert result.requeue_after is None and log.calls == []
    assert delete(nowhere, tgt).done


def test_unreachable_aws_keeps_the_cluster_and_says_so(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("outage")
    ready = converge(aws, tgt)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nothing listens on: connection refused
        down = replace(aws, endpoint_url=f"http://127.0.0.1:{closed.getsockname()[1]}")
        down.config = down.config.merge(Config(retries={"total_max_attempts": 1}))
        during = reconcile(down, tgt, previous=ready.status)
    assert during.error is not None and during.error.reason == "AwsUnreachable"
    assert during.requeue_after is not None  # retried
    assert during.status.phase == ready.status.phase  # not declared gone
    assert during.status.scheduler_address == ready.status.scheduler_address
    after = reconcile(aws, tgt, previous=during.status)
    assert after.ready and after.error is None
    assert delete(aws, tgt).done


def test_a_cluster_arn_in_another_region_names_that_region(local_aws_simulated: Any) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    west = "arn:aws:ecs:us-west-2:123456789012:cluster/shared"
    result = reconcile(aws, target("elsewhere", clusterArn=west))
    assert result.error is not None and result.error.reason == "ClusterInAnotherRegion"
    assert "set spec.region to us-west-2" in result.error.message
    assert "DescribeClusters" not in log.calls and result.requeue_after is None
