"""How this client reaches the scheduler: who may connect, and at which address."""

from __future__ import annotations

from dask_aws.aws import network
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.status import ClusterStatus


def with_vpc_clients(aws: Aws, target: Target) -> Target:
    """No allowed_client_cidrs given: clients inside the cluster's VPC may connect (never
    0.0.0.0/0). Reads the VPC only."""
    vpc_id = network.observe(aws, target).vpc_id
    vpc = aws.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    cidrs = [
        a["CidrBlock"]
        for a in vpc.get("CidrBlockAssociationSet", [])
        if a.get("CidrBlockState", {}).get("State", "associated") == "associated"
    ] or [vpc["CidrBlock"]]
    spec = target.spec
    net = spec.network.model_copy(update={"allowed_client_cidrs": sorted(set(cidrs))})
    return Target(target.owner, spec.model_copy(update={"network": net}))


def public_address(aws: Aws, target: Target, status: ClusterStatus) -> str | None:
    """tcp://<public IP>:<port> of the scheduler task's network interface, if it has one."""
    task_arn, cluster_arn = status.aws.scheduler_task_arn, status.aws.cluster_arn
    if not task_arn or not cluster_arn:
        return None
    tasks = aws.ecs.describe_tasks(cluster=cluster_arn, tasks=[task_arn])["tasks"]
    enis = [
        d["value"]
        for t in tasks
        for a in t.get("attachments", [])
        for d in a.get("details", [])
        if d.get("name") == "networkInterfaceId"
    ]
    if not enis:
        return None
    reply = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=enis[:1])
    public = reply["NetworkInterfaces"][0].get("Association", {}).get("PublicIp")
    return f"tcp://{public}:{target.spec.scheduler.port}" if public else None


UNREACHABLE = (
    "the scheduler runs at {address} but cannot be reached from here ({error}). It has a "
    "private IP: run this client inside the cluster's VPC (allowed by default), or pass "
    "fargate_use_private_ip=False with allowed_client_cidrs=['<your public IP>/32']"
)
