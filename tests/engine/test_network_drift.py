"""A network that loses its way out after the check: the replacement scheduler cannot pull
its image, and the status and an Event say so with AWS's stop reason; the next full read
(here: a spec change) refuses the network before starting anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.aws.found import Target
from dask_aws.engine.memory import Memory
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.spec import DaskAwsClusterSpec
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import Cleanup, target
from tests.fixtures.polling import wait_for


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    made = Cleanup()
    yield made
    made.delete_all()


def public_subnet(ec2: Any) -> tuple[str, str, str]:
    """A VPC of its own whose one subnet routes to an internet gateway: (vpc, subnet, table)."""
    vpc = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.98.1.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    return vpc, subnet, table


def step_until(aws: Any, tgt: Target, memory: Memory, done: Any) -> list[Result]:
    results: list[Result] = []

    def one() -> bool | None:
        results.append(reconcile(aws, tgt, memory=memory))
        return True if done(results[-1]) else None

    wait_for(one, 30, "the expected step", interval=0.1)
    return results


# With TLS the task's first need is its certificates (ECS secrets), fetched before the image.
@pytest.mark.parametrize(
    ("tls", "reason"),
    [(False, "CannotPullContainerError"), (True, "ResourceInitializationError")],
    ids=["image", "secrets"],
)
def test_a_lost_route_stops_the_replacement_with_aws_reason(
    local_aws_simulated: Any, cleanup: Cleanup, tls: bool, reason: str
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    vpc, subnet, table = public_subnet(aws.ec2)
    network = {"vpc": vpc, "subnets": [subnet]}
    tgt, memory = cleanup(aws, target("egress", network=network, tls={"enabled": tls})), Memory()
    ready = step_until(aws, tgt, memory, lambda r: r.ready)[-1]
    cluster, scheduler = ready.status.aws.cluster_arn, ready.status.aws.scheduler_task_arn

    aws.ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    aws.ecs.stop_task(cluster=cluster, task=scheduler, reason="lost (test)")
    results = step_until(aws, tgt, memory, lambda r: reason in (r.status.message or ""))
    events = [e for r in results for e in r.events if reason in e.message]
    assert events and events[0].type == "Warning"
    assert not results[-1].ready

    data = tgt.spec.model_dump(by_alias=True)
    data["tags"] = {"changed": "yes"}
    changed = Target(tgt.owner, DaskAwsClusterSpec.model_validate(data))
    refused = reconcile(aws, changed, memory=memory)
    assert refused.error is not None and refused.error.reason == "ImagePullImpossible"
