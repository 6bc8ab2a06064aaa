"""A spec whose subnets cannot pull the image is Stalled before any task starts, with the
reason and what to change; the default VPC's public subnets just work."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.shared_operator import (
    document,
    small_spec,
    wait_gone,
    wait_ready,
    wait_stalled,
)

pytestmark = [pytest.mark.k8s]


def isolated_subnet(aws: Any) -> tuple[str, str]:
    """(vpc, subnet): a subnet with a route table of its own and no route out."""
    octet = uuid.uuid4().int % 200 + 20  # the simulated AWS is shared by the session
    vpc = aws.ec2.create_vpc(CidrBlock=f"10.{octet}.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{octet}.1.0/24")["Subnet"]
    table = aws.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    aws.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
    return vpc, subnet["SubnetId"]


def test_a_network_that_cannot_pull_is_stalled_before_any_task_starts(
    k8s: Any, k8s_namespace: str, local_aws_simulated: Any, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    vpc, subnet = isolated_subnet(aws)
    start_simulated_operator()
    network = {"vpc": vpc, "subnets": [subnet], "assignPublicIp": False}
    docs = [
        document("no-way-out", small_spec(network=network)),
        document("default-vpc", small_spec()),
    ]
    k8s.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))

    obj = wait_stalled(k8s, ns, "no-way-out", timeout=60)
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "ImagePullImpossible"
    assert stalled["message"].startswith(
        f"{subnet} has no route to the internet (0.0.0.0/0) and cannot pull "
        "ghcr.io/dask/dask:latest, fetch their secrets from Secrets Manager or send their "
        "logs to CloudWatch Logs: to fix it, route 0.0.0.0/0 through a NAT gateway or push "
        "ghcr.io/dask/dask:latest to Amazon ECR in us-east-1 and add the VPC endpoints "
    )
    uid = obj["metadata"]["uid"]
    # Refused at observe: not a task, not even a cluster or a role was made for it.
    assert tagged_resources(aws, uid) == []
    started = [
        arn
        for cluster in aws.ecs.list_clusters()["clusterArns"]
        for state in ("RUNNING", "STOPPED")
        for arn in aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus=state)[
            "taskArns"
        ]
    ]
    assert started == []

    # The default VPC routes 0.0.0.0/0 to its internet gateway: tasks get a public IP.
    ready = wait_ready(k8s, ns, ["default-vpc"], timeout=60)["default-vpc"]
    arn = ready["status"]["aws"]["schedulerTaskArn"]
    cluster = ready["status"]["aws"]["clusterArn"]
    (task,) = aws.ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
    eni = next(
        d["value"] for d in task["attachments"][0]["details"] if d["name"] == "networkInterfaceId"
    )
    (interface,) = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])[
        "NetworkInterfaces"
    ]
    assert "PublicIp" in interface["Association"]

    k8s.kubectl("delete", "dac", "--all", "-n", ns, "--wait=false")
    wait_gone(k8s, ns, ["no-way-out", "default-vpc"], timeout=60)
    assert tagged_resources(aws, uid) == []
