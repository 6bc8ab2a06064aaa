"""The local AWS's network, as AWS's: a public default VPC, and a Fargate task that cannot
get out of its subnet stops as AWS stops it, even when started with plain boto3."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from dask_aws.local import LocalAws
from dask_aws.local.egress import image_ref
from tests.local.helpers import Env, make_env, register, run, task_ip, unique, wait_status

SLEEPER = {
    "name": "main",
    "image": "daskdev/dask:latest",
    "command": [sys.executable, "-c", "import time; time.sleep(60)"],
}


@pytest.fixture
def env(local_aws: LocalAws) -> Env:
    return make_env(local_aws)


def awsvpc(subnet: str, group: str, public_ip: bool) -> dict[str, Any]:
    return {
        "awsvpcConfiguration": {
            "subnets": [subnet],
            "securityGroups": [group],
            "assignPublicIp": "ENABLED" if public_ip else "DISABLED",
        }
    }


def test_the_default_vpc_routes_to_an_attached_internet_gateway(env: Env) -> None:
    vpc = env.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    vpc_id = vpc["VpcId"]
    (main,) = env.ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"]
    (default,) = [r for r in main["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    gateway = env.ec2.describe_internet_gateways(InternetGatewayIds=[default["GatewayId"]])
    assert gateway["InternetGateways"][0]["Attachments"] == [
        {"State": "available", "VpcId": vpc_id}
    ]
    assert env.ec2.describe_nat_gateways()["NatGateways"] == []
    # No subnet has a table of its own: all follow the main one.
    subnets = [s["SubnetId"] for s in env.ec2.describe_subnets()["Subnets"]]
    filters = [{"Name": "association.subnet-id", "Values": subnets}]
    assert env.ec2.describe_route_tables(Filters=filters)["RouteTables"] == []


def test_a_task_without_public_ip_in_a_public_subnet_cannot_pull(
    env: Env, local_aws: LocalAws
) -> None:
    arn = run(
        env,
        register(env, [SLEEPER]),
        networkConfiguration=awsvpc(env.subnet, env.security_group, public_ip=False),
    )[0]["taskArn"]
    task = wait_status(env, arn, "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to "
        "resolve ref docker.io/daskdev/dask:latest: failed to do request: Head "
        '"https://registry-1.docker.io/v2/daskdev/dask/manifests/latest": dial tcp '
        "registry-1.docker.io:443: i/o timeout"
    )
    assert task["containers"][0]["reason"] == task["stoppedReason"]
    assert "startedAt" not in task
    assert [p for p in local_aws.running_processes() if p["taskArn"] == arn] == []


def test_a_task_with_a_public_ip_runs_and_its_interface_reports_it(env: Env) -> None:
    arn = run(
        env,
        register(env, [SLEEPER]),
        networkConfiguration=awsvpc(env.subnet, env.security_group, public_ip=True),
    )[0]["taskArn"]
    task = wait_status(env, arn, "RUNNING")
    eni = next(
        d["value"] for d in task["attachments"][0]["details"] if d["name"] == "networkInterfaceId"
    )
    (interface,) = env.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])[
        "NetworkInterfaces"
    ]
    # The only "public" address a client here can reach: the task's loopback address.
    assert interface["Association"]["PublicIp"] == task_ip(task)
    env.ecs.stop_task(cluster=env.cluster, task=arn)


def private_network(env: Env, *endpoints: str) -> dict[str, Any]:
    """awsvpc settings in a new VPC (the default VPC's subnets stay as they are: other tests
    run in every one of them) whose subnet has no way out but these endpoints (interface
    endpoints; "s3": a Gateway endpoint on the subnet's route table)."""
    vpc = env.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    # Private DNS for interface endpoints needs DNS hostnames (and moto's RunTask fails
    # without them: its ENI then has no private DNS name).
    env.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = env.ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
    table = env.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    env.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    for name in endpoints:
        kind = "Gateway" if name == "s3" else "Interface"
        env.ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.us-east-1.{name}",
            VpcEndpointType=kind,
            **({"RouteTableIds": [table]} if kind == "Gateway" else {"SubnetIds": [subnet]}),
        )
    group = env.ec2.create_security_group(GroupName=unique("sg"), Description="t", VpcId=vpc)
    return awsvpc(subnet, group["GroupId"], public_ip=False)


def test_a_private_subnet_pulls_from_ecr_only_through_its_endpoints(env: Env) -> None:
    private = private_network(env, "ecr.api", "ecr.dkr", "s3", "logs")
    group = unique("/g")
    env.logs.create_log_group(logGroupName=group)
    options = {"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "p"}
    logged = {
        **SLEEPER,
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/dask:1",
        "logConfiguration": {"logDriver": "awslogs", "options": options},
    }
    arn = run(env, register(env, [logged]), networkConfiguration=private)[0]["taskArn"]
    wait_status(env, arn, "RUNNING")
    env.ecs.stop_task(cluster=env.cluster, task=arn)

    docker_hub = run(env, register(env, [SLEEPER]), networkConfiguration=private)[0]["taskArn"]
    task = wait_status(env, docker_hub, "STOPPED")
    assert task["stoppedReason"].startswith("CannotPullContainerError:")

    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf"
    with_secret = {**logged, "secrets": [{"name": "S", "valueFrom": secret}]}
    arn = run(env, register(env, [with_secret]), networkConfiguration=private)[0]["taskArn"]
    task = wait_status(env, arn, "STOPPED")
    assert task["stoppedReason"].startswith(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: service call has been "
        'retried 5 time(s): RequestError: send request failed caused by: Post "https://'
        'secretsmanager.us-east-1.amazonaws.com/": dial tcp'
    )


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("python", ("docker.io", "library/python", "latest")),
        ("daskdev/dask:2024.1", ("docker.io", "daskdev/dask", "2024.1")),
        ("ghcr.io/dask/dask:latest", ("ghcr.io", "dask/dask", "latest")),
        ("localhost:5000/x", ("localhost:5000", "x", "latest")),
        ("repo/x@sha256:abc", ("docker.io", "repo/x", "sha256:abc")),
    ],
)
def test_image_names_resolve_as_a_container_runtime_resolves_them(
    image: str, ref: tuple[str, str, str]
) -> None:
    assert image_ref(image) == ref
