"""The VPC and subnets the tasks run in: the spec's, or the region's default VPC. Never created."""

from __future__ import annotations

from dataclasses import dataclass

from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.errors import PermanentError


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnets: tuple[str, ...]


def observe(aws: Aws, target: Target) -> Network:
    spec = target.spec.network
    if spec.vpc:
        vpcs = aws.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [spec.vpc]}])["Vpcs"]
        if not vpcs:
            raise PermanentError("VpcNotFound", f"network.vpc {spec.vpc} was not found")
        vpc_id = spec.vpc
    else:
        vpcs = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise PermanentError(
                "NoDefaultVpc", f"{aws.region} has no default VPC: set network.vpc and subnets"
            )
        vpc_id = vpcs[0]["VpcId"]
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
