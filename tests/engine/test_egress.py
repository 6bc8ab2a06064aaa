"""egress.decide: whether Fargate tasks can get out of their subnets, and the public-IP
choice that implies. Pure: subnets, endpoints and what the tasks need go in as data."""

from __future__ import annotations

from typing import Any

import pytest

from dask_aws.aws import egress
from dask_aws.aws.egress import Endpoint, Subnet, Wants

REGION = "us-east-1"
PUBLIC = Subnet("subnet-pub", "rtb-pub", "igw-1")
NATTED = Subnet("subnet-nat", "rtb-nat", "nat-1")
ISOLATED = Subnet("subnet-iso", "rtb-iso", None)
TRANSIT = Subnet("subnet-tgw", "rtb-tgw", "tgw-1")
DOCKER_HUB = "daskdev/dask:latest"
ECR = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/dask:1"
ECR_ELSEWHERE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dask:1"


def interface(name: str) -> Endpoint:
    return Endpoint(f"com.amazonaws.{REGION}.{name}", gateway=False)


def s3_gateway(*tables: str) -> Endpoint:
    return Endpoint(f"com.amazonaws.{REGION}.s3", gateway=True, route_tables=frozenset(tables))


ECR_ENDPOINTS = (interface("ecr.api"), interface("ecr.dkr"), s3_gateway("rtb-iso"))


def wants(image: str = DOCKER_HUB, secrets: tuple[str, ...] = (), logs: bool = False) -> Wants:
    return Wants(REGION, (image,), secrets, logs)


@pytest.mark.parametrize(
    ("subnets", "spec", "public_ip"),
    [
        ((PUBLIC,), None, True),
        ((NATTED,), None, False),
        ((ISOLATED,), None, False),
        ((NATTED, PUBLIC), None, True),  # any public subnet: its tasks need one
        ((PUBLIC,), False, False),  # the spec's choice stands
        ((NATTED,), True, True),
    ],
    ids=[
        "public-subnet-gets-one",
        "nat-subnet-gets-none",
        "isolated-subnet-gets-none",
        "mixed-gets-one",
        "spec-false-wins",
        "spec-true-wins",
    ],
)
def test_unset_assign_public_ip_follows_the_routes(
    subnets: tuple[Subnet, ...], spec: bool | None, public_ip: bool
) -> None:
    decision = egress.decide(subnets, (), wants(), spec)
    assert decision.assign_public_ip is public_ip


@pytest.mark.parametrize(
    ("subnet", "spec", "image", "endpoints", "reason"),
    [
        (PUBLIC, None, DOCKER_HUB, (), None),
        (PUBLIC, True, DOCKER_HUB, (), None),
        (PUBLIC, False, DOCKER_HUB, (), "ImagePullImpossible"),
        (NATTED, False, DOCKER_HUB, (), None),
        (TRANSIT, False, DOCKER_HUB, (), None),  # beyond it may be egress: not refused
        (ISOLATED, True, DOCKER_HUB, (), "ImagePullImpossible"),  # a public IP needs a route
        (ISOLATED, None, DOCKER_HUB, ECR_ENDPOINTS, "ImagePullImpossible"),
        (ISOLATED, None, ECR, ECR_ENDPOINTS, None),
        (ISOLATED, None, ECR, ECR_ENDPOINTS[:2], "ImagePullImpossible"),  # no S3: no layers
        (ISOLATED, None, ECR, (*ECR_ENDPOINTS[:2], s3_gateway("rtb-other")), "ImagePullImpossible"),
        (ISOLATED, None, ECR_ELSEWHERE, ECR_ENDPOINTS, "ImagePullImpossible"),
        (PUBLIC, False, ECR, (*ECR_ENDPOINTS[:2], s3_gateway("rtb-pub")), None),
    ],
    ids=[
        "public-subnet-automatic",
        "public-subnet-with-public-ip",
        "public-subnet-without-public-ip",
        "nat-gateway",
        "transit-gateway",
        "no-route-public-ip-useless",
        "endpoints-cannot-reach-docker-hub",
        "ecr-through-endpoints",
        "ecr-without-s3",
        "s3-gateway-on-another-route-table",
        "ecr-of-another-region",
        "public-subnet-private-ecr-pull",
    ],
)
def test_image_pull(
    subnet: Subnet,
    spec: bool | None,
    image: str,
    endpoints: tuple[Endpoint, ...],
    reason: str | None,
) -> None:
    error = egress.decide((subnet,), endpoints, wants(image), spec).error()
    assert (error.reason if error else None) == reason


@pytest.mark.parametrize(
    ("secrets", "logs", "endpoints", "reason"),
    [
        (("secretsmanager",), False, (), "SecretsUnreachable"),
        (("secretsmanager",), False, (interface("secretsmanager"),), None),
        (("ssm",), False, (interface("secretsmanager"),), "SecretsUnreachable"),
        ((), True, (), "LogsUnreachable"),
        ((), True, (interface("logs"),), None),
    ],
    ids=[
        "secrets-manager-unreachable",
        "secrets-manager-endpoint",
        "ssm-needs-its-own-endpoint",
        "logs-unreachable",
        "logs-endpoint",
    ],
)
def test_secrets_and_logs_need_a_way_out_too(
    secrets: tuple[str, ...], logs: bool, endpoints: tuple[Endpoint, ...], reason: str | None
) -> None:
    error = egress.decide(
        (ISOLATED,), (*ECR_ENDPOINTS, *endpoints), wants(ECR, secrets, logs), None
    ).error()
    assert (error.reason if error else None) == reason


def test_the_image_names_the_error_when_everything_is_unreachable() -> None:
    error = egress.decide((ISOLATED,), (), wants(DOCKER_HUB, ("ssm",), True), None).error()
    assert error is not None and error.reason == "ImagePullImpossible"


def test_problems_come_in_the_order_a_task_start_meets_them() -> None:
    found = egress.problems(ISOLATED, (), wants(DOCKER_HUB, ("secretsmanager",), True), False)
    assert [p.need for p in found] == ["secrets", "image", "logs"]


def test_the_message_names_subnet_gateway_image_and_the_fixes() -> None:
    error = egress.decide((PUBLIC,), (), wants(), False).error()
    assert error is not None
    assert error.message.startswith(
        "subnet-pub routes 0.0.0.0/0 to igw-1 but network.assignPublicIp is false, so tasks "
        "there get no public IP and cannot pull daskdev/dask:latest: to fix it, set "
        "network.assignPublicIp to true (or leave it unset), route 0.0.0.0/0 through a NAT "
        "gateway or push daskdev/dask:latest to Amazon ECR in us-east-1 and add the VPC "
        "endpoints com.amazonaws.us-east-1.ecr.api, com.amazonaws.us-east-1.ecr.dkr and "
        "com.amazonaws.us-east-1.s3"
    )


def test_alike_subnets_share_one_sentence_and_missing_endpoints_are_named() -> None:
    other = Subnet("subnet-iso2", "rtb-iso", None)
    error = egress.decide(
        (ISOLATED, other, PUBLIC), ECR_ENDPOINTS, wants(ECR, ("ssm",), True), None
    ).error()
    assert error is not None and error.reason == "SecretsUnreachable"
    assert error.message == (
        "subnet-iso and subnet-iso2 have no route to the internet (0.0.0.0/0) and cannot "
        "fetch their secrets from SSM Parameter Store or send their logs to CloudWatch Logs: "
        "to fix it, route 0.0.0.0/0 through a NAT gateway or add the VPC endpoints "
        "com.amazonaws.us-east-1.logs and com.amazonaws.us-east-1.ssm."
    )


def _table(subnets: tuple[str, ...], *routes: dict[str, Any], main: bool = False) -> Any:
    associations: list[dict[str, Any]] = [{"SubnetId": s} for s in subnets]
    if main:
        associations.append({"Main": True})
    return {
        "RouteTableId": f"rtb-{len(subnets)}{main}",
        "Associations": associations,
        "Routes": list(routes),
    }


LOCAL = {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"}


def test_subnets_without_a_table_of_their_own_follow_the_main_one() -> None:
    own = _table(
        ("subnet-a",), LOCAL, {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-9"}
    )
    main = _table((), LOCAL, {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-9"}, main=True)
    found = egress.subnets_from(("subnet-a", "subnet-b"), [own], main)
    assert [(s.id, s.default_route, s.public) for s in found] == [
        ("subnet-a", "nat-9", False),
        ("subnet-b", "igw-9", True),
    ]


def test_a_blackhole_default_route_is_no_way_out() -> None:
    dead = {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-gone", "State": "blackhole"}
    assert egress.default_route(_table((), LOCAL, dead)) is None


def test_failed_endpoints_and_interface_endpoints_without_private_dns_are_left_out() -> None:
    raw = [
        {"ServiceName": "a", "VpcEndpointType": "Interface", "State": "available"},
        {"ServiceName": "b", "VpcEndpointType": "Interface", "State": "failed"},
        {"ServiceName": "c", "VpcEndpointType": "Interface", "PrivateDnsEnabled": False},
        {"ServiceName": "d", "VpcEndpointType": "Gateway", "RouteTableIds": ["rtb-1"]},
    ]
    assert [(e.service, e.gateway) for e in egress.endpoints_from(raw)] == [
        ("a", False),
        ("d", True),
    ]
