"""Fault injection, observed by plain boto3 clients."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dask_aws.local import LocalAws
from tests.local.helpers import make_env, register, run

CONTAINER = [{"name": "main", "image": "python", "command": ["sleep", "60"]}]
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5})


def test_throttle_is_seen_without_retries_and_absorbed_with_them(
    local_aws_simulated: LocalAws,
) -> None:
    env = make_env(local_aws_simulated, config=NO_RETRIES)
    td = register(env, CONTAINER)
    local_aws_simulated.fail_next("ecs:RunTask", 1, "throttle")
    with pytest.raises(ClientError) as exc:
        run(env, td)
    assert exc.value.response["Error"]["Code"] == "ThrottlingException"
    assert exc.value.response["Error"]["Message"] == "Rate exceeded"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # No side effect: the throttled call created no task.
    assert env.ecs.list_tasks(cluster=env.cluster)["taskArns"] == []

    retrying = env.session.client("ecs", config=RETRIES)
    attempts: list[str] = []
    retrying.meta.events.register("before-send", lambda **kw: attempts.append("x"))
    local_aws_simulated.fail_next("ecs:RunTask", 2, "throttle")
    response = retrying.run_task(
        cluster=env.cluster,
        taskDefinition=td,
        launchType="FARGATE",
        networkConfiguration=env.network(),
    )
    assert len(response["tasks"]) == 1
    assert len(attempts) == 3


def test_server_errors_and_query_protocol_throttling(local_aws_simulated: LocalAws) -> None:
    env = make_env(local_aws_simulated, config=NO_RETRIES)
    local_aws_simulated.fail_next("ecs:DescribeClusters", 1, "5xx")
    with pytest.raises(ClientError) as exc:
        env.ecs.describe_clusters(clusters=[env.cluster])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert exc.value.response["Error"]["Code"] == "ServerException"
    assert env.ecs.describe_clusters(clusters=[env.cluster])["clusters"]

    ec2 = env.session.client("ec2", config=NO_RETRIES)
    local_aws_simulated.fail_next("ec2:DescribeSubnets", 1, "throttle")
    with pytest.raises(ClientError) as exc:
        ec2.describe_subnets()
    assert exc.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert ec2.describe_subnets()["Subnets"]


def test_capacity_failures_for_fargate_spot(local_aws_simulated: LocalAws) -> None:
    env = make_env(local_aws_simulated)
    td = register(env, CONTAINER)
    local_aws_simulated.capacity_failures(2)
    on_demand = run(env, td, count=1)
    assert len(on_demand) == 1  # plain FARGATE is unaffected

    def on_spot(count: int) -> Any:
        strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
        return env.ecs.run_task(
            cluster=env.cluster,
            taskDefinition=td,
            count=count,
            capacityProviderStrategy=strategy,
            networkConfiguration=env.network(),
        )

    response = on_spot(3)
    assert len(response["tasks"]) == 1
    assert [f["reason"] for f in response["failures"]] == [
        "Capacity is unavailable at this time. Please try again later or in a different "
        "availability zone"
    ] * 2
    assert response["tasks"][0]["capacityProviderName"] == "FARGATE_SPOT"
    assert response["tasks"][0]["launchType"] == "FARGATE"
    again = on_spot(1)
    assert again["failures"] == [] and len(again["tasks"]) == 1


def test_faults_over_http(local_aws_simulated: LocalAws) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"{local_aws_simulated.endpoint_url}/_local/faults/fail-next",
        data=json.dumps({"operation": "ecs:ListClusters", "count": 1, "kind": "5xx"}).encode(),
        method="POST",
    )
    with opener.open(request, timeout=10) as response:
        assert json.loads(response.read()) == {"ok": True}
    env = make_env(local_aws_simulated, config=NO_RETRIES)
    with pytest.raises(ClientError):
        env.ecs.list_clusters()
    assert env.ecs.list_clusters()["clusterArns"]
