"""RunTask admission on the local AWS as on AWS: Fargate vCPU quotas and subnet addresses."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.local import LocalAws
from dask_aws.local.quotas import DEFAULT_VCPU, VCPU_LIMIT_REASON, FargateQuotas
from tests.fixtures.local_aws import boto_session
from tests.local.helpers import Env, describe, register, unique, wait_status

CONTAINER = [{"name": "main", "image": "python", "command": ["sleep", "60"]}]
# Quotas are per region: a region no other test runs tasks in sees only this file's tasks.
QUOTA_REGION = "eu-west-3"


def env_in(local: LocalAws, region: str) -> Env:
    session = boto_session(local, region=region)
    ecs, ec2 = session.client("ecs"), session.client("ec2")
    cluster = unique("cluster")
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.create_security_group(GroupName=unique("sg"), Description="test")["GroupId"]
    return Env(session, ecs, ec2, session.client("logs"), cluster, subnet, group)


def run_task(env: Env, task_definition: str, count: int, **kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "cluster": env.cluster,
        "taskDefinition": task_definition,
        "count": count,
        "networkConfiguration": env.network(),
        **kwargs,
    }
    if "capacityProviderStrategy" not in params:
        params.setdefault("launchType", "FARGATE")
    response: dict[str, Any] = env.ecs.run_task(**params)
    return response


@pytest.fixture
def quota_env(local_aws_simulated: LocalAws) -> Iterator[tuple[LocalAws, Env]]:
    try:
        yield local_aws_simulated, env_in(local_aws_simulated, QUOTA_REGION)
    finally:
        local_aws_simulated.set_quotas(fargate_vcpu=DEFAULT_VCPU, fargate_spot_vcpu=DEFAULT_VCPU)


def stop_all(env: Env, arns: list[str]) -> None:
    for arn in arns:
        env.ecs.stop_task(cluster=env.cluster, task=arn)
    for arn in arns:
        wait_status(env, arn, "STOPPED")


def test_vcpu_quota_refuses_tasks_over_it_until_tasks_stop(
    quota_env: tuple[LocalAws, Env],
) -> None:
    local, env = quota_env
    local.set_quotas(fargate_vcpu=1)  # four tasks of 256 cpu units
    definition = register(env, CONTAINER)
    first = run_task(env, definition, 6)
    assert len(first["tasks"]) == 4
    assert [f["reason"] for f in first["failures"]] == [VCPU_LIMIT_REASON] * 2
    refused = run_task(env, definition, 1)
    assert refused["tasks"] == [] and refused["failures"][0]["reason"] == VCPU_LIMIT_REASON
    assert local.quotas()["usageVcpu"][f"123456789012/{QUOTA_REGION}"]["FARGATE"] == 1.0
    # A bigger task (1 vCPU) fits once its share has stopped.
    stop_all(env, [t["taskArn"] for t in first["tasks"]])
    again = run_task(env, definition, 1, overrides={"cpu": "1024", "memory": "2048"})
    assert len(again["tasks"]) == 1 and not again.get("failures")
    stop_all(env, [again["tasks"][0]["taskArn"]])


def test_spot_quota_is_counted_apart_from_on_demand(quota_env: tuple[LocalAws, Env]) -> None:
    local, env = quota_env
    local.set_quotas(fargate_vcpu=0.25, fargate_spot_vcpu=0.5)
    definition = register(env, CONTAINER)
    spot = run_task(
        env, definition, 3, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}]
    )
    assert len(spot["tasks"]) == 2
    assert [f["reason"] for f in spot["failures"]] == [VCPU_LIMIT_REASON]
    on_demand = run_task(env, definition, 2)
    assert len(on_demand["tasks"]) == 1 and len(on_demand["failures"]) == 1
    stop_all(env, [t["taskArn"] for t in spot["tasks"] + on_demand["tasks"]])


def test_quota_arithmetic_and_codes() -> None:
    quotas = FargateQuotas(on_demand_vcpu=2)
    assert quotas.admit("a", "r", "FARGATE", 1024, 5) == 2
    assert quotas.admit("a", "r", None, 1024, 5) == 5  # EC2: no Fargate quota
    done = threading.Event()
    quotas.track("a", "r", "FARGATE", "arn:1", 1024, done)
    assert quotas.admit("a", "r", "FARGATE", 512, 5) == 2
    assert quotas.admit("a", "other-region", "FARGATE", 1024, 5) == 2
    done.set()
    assert quotas.admit("a", "r", "FARGATE", 1024, 5) == 2
    quotas.configure({"L-36FBB829": 0.5, "fargateOnDemandVcpu": 8})
    assert quotas.describe()["fargateSpotVcpu"] == 0.5
    assert quotas.describe()["fargateOnDemandVcpu"] == 8
    with pytest.raises(ValueError):
        quotas.configure({"L-NOPE": 1})


def test_quotas_are_options_of_the_server() -> None:
    with LocalAws(simulated=True, fargate_vcpu_quota=0.5, fargate_spot_vcpu_quota=6) as local:
        quotas = local.quotas()
        assert (quotas["fargateOnDemandVcpu"], quotas["fargateSpotVcpu"]) == (0.5, 6)
        local.set_quotas(fargate_spot_vcpu=2)
        assert local.quotas()["fargateSpotVcpu"] == 2


def small_subnets(env: Env, count: int) -> list[str]:
    """`count` new /28 subnets (11 free addresses each) in the default VPC, which gets out."""
    vpc = env.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    taken = {s["CidrBlock"] for s in env.ec2.describe_subnets()["Subnets"]}
    candidates = ipaddress.ip_network("172.31.192.0/18").subnets(new_prefix=28)
    result = []
    for cidr in candidates:
        if len(result) == count:
            break
        if any(ipaddress.ip_network(cidr).overlaps(ipaddress.ip_network(t)) for t in taken):
            continue
        subnet = env.ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=str(cidr))["Subnet"]
        result.append(subnet["SubnetId"])
    return result


def free(env: Env, subnet: str) -> int:
    found = env.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]
    return int(found["AvailableIpAddressCount"])


def subnet_of(task: dict[str, Any]) -> str:
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    return str(details["subnetId"])


def test_full_subnet_spills_into_the_next_then_tasks_fail_to_start(
    local_aws_simulated: LocalAws,
) -> None:
    env = env_in(local_aws_simulated, "us-east-1")
    first, second = small_subnets(env, 2)
    try:
        fill_spill_and_free(env, first, second)
    finally:
        for subnet in (first, second):
            env.ec2.delete_subnet(SubnetId=subnet)


def fill_spill_and_free(env: Env, first: str, second: str) -> None:
    assert free(env, first) == free(env, second) == 11
    env.subnet = first
    network = env.network()
    network["awsvpcConfiguration"]["subnets"] = [first, second]
    definition = register(env, CONTAINER)
    started = []
    for count in (10, 10):
        started += run_task(env, definition, count, networkConfiguration=network)["tasks"]
    assert [subnet_of(t) for t in started] == [first] * 11 + [second] * 9
    assert (free(env, first), free(env, second)) == (0, 2)
    for task in started:
        wait_status(env, task["taskArn"], "RUNNING")
    # No room anywhere: RunTask still answers 200 and the task stops as AWS stops it.
    last = run_task(env, definition, 3, networkConfiguration=network)
    assert not last.get("failures") and len(last["tasks"]) == 3
    refused = wait_status(env, last["tasks"][2]["taskArn"], "STOPPED")
    assert refused["stopCode"] == "TaskFailedToStart"
    assert "InsufficientFreeAddressesInSubnet" in refused["stoppedReason"]
    assert f"'{first}'" in refused["stoppedReason"]
    assert describe(env, [last["tasks"][1]["taskArn"]])[0]["lastStatus"] == "RUNNING"
    assert (free(env, first), free(env, second)) == (0, 0)
    # Stopped tasks give their addresses back.
    stop_all(env, [started[0]["taskArn"]])
    assert free(env, first) == 1
    again = run_task(env, definition, 1, networkConfiguration=network)["tasks"][0]
    assert subnet_of(again) == first
    stop_all(env, [t["taskArn"] for t in started[1:] + last["tasks"][:2]] + [again["taskArn"]])
    assert (free(env, first), free(env, second)) == (11, 11)
