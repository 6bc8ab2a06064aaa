"""How FargateCluster() reaches its scheduler with no network arguments: from outside the
VPC (a laptop) the scheduler gets a public IP and exactly this machine's public address
may connect; inside, the private IP and the VPC's CIDR blocks."""

from __future__ import annotations

import os
from typing import Any

import dask.config
import pytest
from distributed import Client

from dask_aws import FargateCluster
from dask_aws.aws.found import Target
from dask_aws.cluster import reach
from dask_aws.errors import PermanentError
from dask_aws.local import LocalAws
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.python_api.helpers import SMALL

LAPTOP = ["192.0.2.2", "2001:db8::2"]  # documentation addresses: outside any VPC here


def ingress(aws: Any, group_id: str) -> set[tuple[int, str]]:
    """(port, source) of every ingress rule of the group."""
    (group,) = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    rules = set()
    for permission in group["IpPermissions"]:
        port = permission.get("FromPort", 0)
        rules |= {(port, r["CidrIp"]) for r in permission.get("IpRanges", [])}
        rules |= {(port, r["CidrIpv6"]) for r in permission.get("Ipv6Ranges", [])}
        rules |= {(port, r["GroupId"]) for r in permission.get("UserIdGroupPairs", [])}
    return rules


@pytest.mark.slow
def test_from_a_laptop_only_its_public_address_reaches_the_public_scheduler(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reach, "interface_addresses", lambda: LAPTOP)
    aws, _ = aws_for(local_aws.endpoint_url)
    cluster = FargateCluster(n_workers=1, quiet=True, **SMALL)
    try:
        status = cluster.aws_status
        assert status is not None and status.aws.security_group_id
        group = status.aws.security_group_id
        # The checkip stand-in answers the caller's address: 127.0.0.1 on loopback.
        assert ingress(aws, group) == {(0, group), (8786, "127.0.0.1/32"), (8787, "127.0.0.1/32")}
        (task,) = aws.ecs.describe_tasks(
            cluster=status.aws.cluster_arn, tasks=[status.aws.scheduler_task_arn]
        )["tasks"]
        eni = next(
            d["value"]
            for d in task["attachments"][0]["details"]
            if d["name"] == "networkInterfaceId"
        )
        (interface,) = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])[
            "NetworkInterfaces"
        ]
        public_ip = interface["Association"]["PublicIp"]
        assert cluster.scheduler_comm.address.startswith(f"tls://{public_ip}:")
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=30)
            assert client.submit(sum, range(101)).result() == 5050
        said = cluster.get_logs(scheduler=False, workers=False)["Cluster"]
        assert (
            "outside the VPC: the scheduler gets a public IP; only this machine's public " in said
        )
        assert f"127.0.0.1/32 (from {local_aws.checkip_url}) may connect" in said
    finally:
        cluster.close()
    assert tagged_resources(aws, cluster.uid) == []


def _target(**network: Any) -> Target:
    spec = DaskAwsClusterSpec.model_validate({"network": network})
    return Target(Owner(uid="0" * 36, name="reach", kind="Python"), spec)


def test_inside_the_vpc_the_vpcs_blocks_may_connect_and_no_public_ip_is_forced(
    local_aws_simulated: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reach, "interface_addresses", lambda: ["172.31.7.9"])
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    target, line = reach.prepare(aws, _target(), "auto", cidrs_given=False)
    assert target.spec.network.allowed_client_cidrs == ["172.31.0.0/16"]
    assert target.spec.network.assign_public_ip is None  # the subnets' routes decide
    assert line == "inside the VPC: the scheduler's private IP; 172.31.0.0/16 may connect"


@pytest.mark.parametrize(
    ("path", "given", "cidrs", "public_ip"),
    [
        ("public", [], ["127.0.0.1/32"], True),
        ("public", ["198.51.100.7/32"], ["198.51.100.7/32"], True),
        ("private", [], ["172.31.0.0/16"], None),
        ("private", ["10.1.0.0/16"], ["10.1.0.0/16"], None),
    ],
    ids=["public-discovered", "public-given", "private-vpc", "private-given"],
)
def test_each_path_opens_exactly_its_sources(
    local_aws_simulated: LocalAws,
    path: reach.Path,
    given: list[str],
    cidrs: list[str],
    public_ip: bool | None,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    with dask.config.set({"dask_aws.checkip-url": local_aws_simulated.checkip_url}):
        target, _ = reach.prepare(
            aws, _target(allowedClientCidrs=given), path, cidrs_given=bool(given)
        )
    assert target.spec.network.allowed_client_cidrs == cidrs
    assert target.spec.network.assign_public_ip is public_ip
    assert "0.0.0.0/0" not in target.spec.network.allowed_client_cidrs


@pytest.mark.parametrize(
    ("cidrs", "addresses", "inside"),
    [
        (["172.31.0.0/16"], ["172.31.40.2"], True),
        (["172.31.0.0/16"], ["192.0.2.2", "10.0.0.5"], False),
        (["10.0.0.0/16", "100.64.0.0/16"], ["100.64.3.3"], True),  # a secondary block
        (["172.31.0.0/16"], ["2001:db8::1"], False),
        (["172.31.0.0/16"], [], False),
    ],
)
def test_inside_means_an_address_of_this_machine_lies_in_the_vpc(
    cidrs: list[str], addresses: list[str], inside: bool
) -> None:
    assert reach.inside(cidrs, addresses) is inside


def test_interface_addresses_leave_out_loopback() -> None:
    found = reach.interface_addresses()
    assert "127.0.0.1" not in found and "::1" not in found


def test_the_public_address_comes_from_checkip_and_only_from_loopback_in_tests(
    local_aws_simulated: LocalAws,
) -> None:
    assert os.environ["DASK_AWS_LOOPBACK_ONLY"] == "1"  # tests/conftest.py
    assert reach.caller_cidr(local_aws_simulated.checkip_url) == "127.0.0.1/32"
    with pytest.raises(PermanentError, match="not a loopback address") as refused:
        reach.caller_cidr("https://checkip.amazonaws.com")
    assert "allowed_client_cidrs=['<your public IP>/32']" in refused.value.message
    with pytest.raises(PermanentError, match="could not learn this machine's public address"):
        reach.caller_cidr(f"{local_aws_simulated.endpoint_url}/_local/health")  # not an IP
