"""The VPC and subnets the tasks run in: the spec's, or the region's default VPC. Never created.

`observe` also checks that Fargate tasks can get out of those subnets (aws/egress.py), so
a network that cannot pull the image is refused before any task starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dask_aws.aws import egress
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.errors import PermanentError
from dask_aws.spec import LaunchType


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnets: tuple[str, ...]
    # awsvpc assignPublicIp for RunTask: the spec's, or egress's choice when it is unset.
    # `locate` leaves it False: only `observe`'s result starts tasks.
    assign_public_ip: bool = False


def observe(aws: Aws, target: Target) -> Network:
    """The network, checked: PermanentError when tasks there could not start."""
    network = locate(aws, target)
    wanted = target.spec.network.assign_public_ip
    if target.spec.launch_type is not LaunchType.FARGATE:
        # On EC2 the container instance pulls the image over its own network, and AWS
        # takes no public IP for an EC2 task: unset means none.
        return replace(network, assign_public_ip=bool(wanted))
    decision = egress.check(aws, target, network.vpc_id, network.subnets)
    error = decision.error()
    if error is not None:
        raise error
    return replace(network, assign_public_ip=decision.assign_public_ip)


def vpc(aws: Aws, target: Target) -> Any:
    """The spec's VPC, or the region's default one, as DescribeVpcs answers it: one read."""
    spec = target.spec.network
    if spec.vpc:
        vpcs = aws.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [spec.vpc]}])["Vpcs"]
        if not vpcs:
            raise PermanentError("VpcNotFound", f"network.vpc {spec.vpc} was not found")
        return vpcs[0]
    vpcs = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise PermanentError(
            "NoDefaultVpc", f"{aws.region} has no default VPC: set network.vpc and subnets"
        )
    return vpcs[0]


def locate(aws: Aws, target: Target) -> Network:
    """The VPC and subnets only (deletion needs no more)."""
    spec = target.spec.network
    if not spec.vpc and not spec.subnets:
        return _default(aws)
    vpc_id = str(vpc(aws, target)["VpcId"])
    if spec.subnets:
        found = aws.ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": spec.subnets}])
        known = {s["SubnetId"]: s["VpcId"] for s in found["Subnets"]}
        missing = [s for s in spec.subnets if s not in known]
        if missing:
            raise PermanentError("SubnetNotFound", f"network.subnets not found: {missing}")
        foreign = [s for s in spec.subnets if known[s] != vpc_id]
        if foreign:
            raise PermanentError("SubnetNotInVpc", f"subnets {foreign} are not in {vpc_id}")
        return Network(vpc_id, tuple(spec.subnets))
    subnets = aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    if not subnets:
        raise PermanentError("NoSubnets", f"{vpc_id} has no subnets: set network.subnets")
    return Network(vpc_id, tuple(sorted(s["SubnetId"] for s in subnets)))


def _default(aws: Aws) -> Network:
    """The default VPC's default subnets (one per Availability Zone, where a task without
    network settings runs): each names its VPC, so one call answers both."""
    subnets = aws.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"
    ]
    if not subnets:
        raise PermanentError(
            "NoDefaultVpc",
            f"{aws.region} has no default VPC with default subnets: set network.vpc and subnets",
        )
    return Network(str(subnets[0]["VpcId"]), tuple(sorted(s["SubnetId"] for s in subnets)))
