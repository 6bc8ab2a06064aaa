"""Whether a Fargate task can get out of its subnet: to pull its image, to fetch its ECS
secrets (Secrets Manager, SSM) and to ship its logs (CloudWatch Logs).

AWS finds out only after RunTask, and stops the task (CannotPullContainerError,
ResourceInitializationError). `decide` says so before any task starts, naming the subnets
and what to change, and resolves `network.assignPublicIp` when the spec leaves it unset:
a public IP exactly when a subnet routes 0.0.0.0/0 to an internet gateway (a public
subnet, like the default VPC's), none behind a NAT gateway.

It refuses only what surely fails. A way out is a 0.0.0.0/0 route to an internet gateway
with a public IP, or to anything else (a NAT gateway, a NAT instance, a transit gateway, a
VPN or peering connection: what lies beyond it cannot be seen from here), or the VPC
endpoint of the service. `decide` is pure; the local AWS's data plane runs it too, so a
task started around this check (plain boto3 RunTask) stops there as it would on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dask_aws.aws import task_definitions
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.errors import PermanentError

Need = Literal["secrets", "image", "logs"]  # in the order a task start meets them
# The error's reason: the first of these the tasks could not reach (the image first: it
# is what a task start is known for failing on; secrets and logs fail the same way).
REASONS: Mapping[Need, str] = {
    "image": "ImagePullImpossible",
    "secrets": "SecretsUnreachable",
    "logs": "LogsUnreachable",
}
SERVICE_LABELS = {"secretsmanager": "Secrets Manager", "ssm": "SSM Parameter Store"}
# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>
ECR_IMAGE = re.compile(r"^[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")
# Keys of a route's target in DescribeRouteTables, GatewayId (igw-, vgw-) first.
ROUTE_TARGETS = (
    "GatewayId",
    "NatGatewayId",
    "TransitGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "VpcPeeringConnectionId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "CoreNetworkArn",
)


@dataclass(frozen=True)
class Subnet:
    id: str
    route_table: str | None  # its own, else the VPC's main one; None: none found
    default_route: str | None  # the target of its 0.0.0.0/0 route; None: no such route

    @property
    def public(self) -> bool:
        return (self.default_route or "").startswith("igw-")


@dataclass(frozen=True)
class Endpoint:
    service: str  # com.amazonaws.us-east-1.ecr.dkr
    gateway: bool  # a Gateway endpoint (S3) serves only the route tables it is on
    route_tables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Wants:
    """What the tasks must reach."""

    region: str
    images: tuple[str, ...]
    secret_services: tuple[str, ...] = ()  # "secretsmanager", "ssm"
    logs: bool = True


@dataclass(frozen=True)
class Problem:
    subnet: Subnet
    need: Need
    what: str  # the image; for secrets the service ("secretsmanager", "ssm")
    endpoints: tuple[str, ...] | None  # the VPC endpoints that would do; None: none would


@dataclass(frozen=True)
class Decision:
    assign_public_ip: bool
    region: str
    problems: tuple[Problem, ...] = ()

    def error(self) -> PermanentError | None:
        if not self.problems:
            return None
        first = min(self.problems, key=lambda p: list(REASONS).index(p.need))
        return PermanentError(REASONS[first.need], explain(self))


def service(region: str, name: str) -> str:
    return f"com.amazonaws.{region}.{name}"


def ecr_endpoints(region: str) -> tuple[str, ...]:
    """What an ECR pull can use instead of the internet: ECR's API and registry, and S3,
    where ECR keeps the layers."""
    return (service(region, "ecr.api"), service(region, "ecr.dkr"), service(region, "s3"))


def image_endpoints(image: str, region: str) -> tuple[str, ...] | None:
    """The VPC endpoints a pull of `image` can use: ECR's for an ECR image of the VPC's own
    region; None for any other registry (only the internet reaches it)."""
    match = ECR_IMAGE.match(image)
    return ecr_endpoints(region) if match is not None and match.group(1) == region else None


def _served(subnet: Subnet, endpoints: Iterable[Endpoint], name: str) -> bool:
    return any(
        e.service == name and (not e.gateway or subnet.route_table in e.route_tables)
        for e in endpoints
    )


def _internet(subnet: Subnet, public_ip: bool) -> bool:
    if subnet.default_route is None:
        return False
    return public_ip or not subnet.public


def problems(
    subnet: Subnet, endpoints: Sequence[Endpoint], wants: Wants, public_ip: bool
) -> list[Problem]:
    """What tasks in `subnet` could not reach, in the order a task start meets them."""
    if _internet(subnet, public_ip):
        return []
    found: list[Problem] = []

    def check(need: Need, what: str, names: tuple[str, ...] | None) -> None:
        if names is None or not all(_served(subnet, endpoints, n) for n in names):
            found.append(Problem(subnet, need, what, names))

    for name in wants.secret_services:
        check("secrets", name, (service(wants.region, name),))
    for image in dict.fromkeys(wants.images):
        check("image", image, image_endpoints(image, wants.region))
    if wants.logs:
        check("logs", "CloudWatch Logs", (service(wants.region, "logs"),))
    return found


def decide(
    subnets: Sequence[Subnet],
    endpoints: Sequence[Endpoint],
    wants: Wants,
    assign_public_ip: bool | None,
) -> Decision:
    """The public-IP choice for these subnets (the spec's, or automatic when None) and
    what tasks could then not reach."""
    public_ip = any(s.public for s in subnets) if assign_public_ip is None else assign_public_ip
    found = [p for s in subnets for p in problems(s, endpoints, wants, public_ip)]
    return Decision(public_ip, wants.region, tuple(found))


# -- the message ------------------------------------------------------------------------------
def _verb(problem: Problem) -> str:
    if problem.need == "image":
        return f"pull {problem.what}"
    if problem.need == "secrets":
        return f"fetch their secrets from {SERVICE_LABELS.get(problem.what, problem.what)}"
    return "send their logs to CloudWatch Logs"


def _join(items: Sequence[str], last: str = "and") -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _why(subnets: Sequence[Subnet]) -> str:
    one = len(subnets) == 1
    names = _join([s.id for s in subnets])
    if subnets[0].public:
        gateways = _join(sorted({s.default_route or "" for s in subnets}))
        return (
            f"{names} {'routes' if one else 'route'} 0.0.0.0/0 to {gateways} but "
            "network.assignPublicIp is false, so tasks there get no public IP"
        )
    return f"{names} {'has' if one else 'have'} no route to the internet (0.0.0.0/0)"


def _fixes(region: str, found: Sequence[Problem], public: bool) -> str:
    fixes = ["set network.assignPublicIp to true (or leave it unset)"] if public else []
    fixes.append("route 0.0.0.0/0 through a NAT gateway")
    foreign = [p.what for p in found if p.need == "image" and p.endpoints is None]
    endpoints = {n for p in found for n in p.endpoints or ()}
    if foreign:  # no endpoint reaches another registry: ECR's would, for a copy there
        endpoints |= set(ecr_endpoints(region))
    add = f"add the VPC endpoints {_join(sorted(endpoints))}"
    if service(region, "s3") in endpoints:
        add += f" ({service(region, 's3')} as a Gateway endpoint on the subnets' route table)"
    fixes.append(f"push {_join(foreign)} to Amazon ECR in {region} and {add}" if foreign else add)
    return _join(fixes, "or")


def explain(decision: Decision) -> str:
    """One sentence per kind of subnet: which, why, what tasks there cannot do, what to
    change."""
    by_subnet: dict[Subnet, list[Problem]] = {}
    for problem in decision.problems:
        by_subnet.setdefault(problem.subnet, []).append(problem)
    # Subnets alike (public or not, missing the same things) share a sentence.
    groups: dict[tuple[bool, tuple[str, ...]], list[Problem]] = {}
    order = list(REASONS)
    for subnet, found in by_subnet.items():
        found.sort(key=lambda p: order.index(p.need))
        groups.setdefault((subnet.public, tuple(_verb(p) for p in found)), []).extend(found)
    sentences = []
    for (public, verbs), found in groups.items():
        subnets = list(dict.fromkeys(p.subnet for p in found))
        sentences.append(
            f"{_why(subnets)} and cannot {_join(list(verbs), 'or')}: to fix it, "
            f"{_fixes(decision.region, found, public)}."
        )
    return " ".join(sentences)


# -- reading AWS --------------------------------------------------------------------------------
def default_route(table: Mapping[str, Any]) -> str | None:
    """The target of a route table's active 0.0.0.0/0 route (a blackhole is none)."""
    for route in table.get("Routes", []):
        if route.get("DestinationCidrBlock") != "0.0.0.0/0":
            continue
        if route.get("State", "active") != "active":
            return None
        return next((str(route[k]) for k in ROUTE_TARGETS if route.get(k)), "unknown")
    return None


def subnets_from(
    subnet_ids: Sequence[str],
    tables: Sequence[Mapping[str, Any]],
    main: Mapping[str, Any] | None,
) -> list[Subnet]:
    """Each subnet with its own route table, or else the VPC's main one (AWS's rule)."""
    own = {
        a["SubnetId"]: table
        for table in tables
        for a in table.get("Associations", [])
        if a.get("SubnetId")
    }
    result = []
    for subnet_id in subnet_ids:
        table = own.get(subnet_id, main)
        result.append(
            Subnet(
                subnet_id,
                str(table["RouteTableId"]) if table else None,
                default_route(table) if table else None,
            )
        )
    return result


USABLE_ENDPOINT_STATES = ("available", "pending", "pendingAcceptance")


def usable(state: object, gateway: bool, private_dns: object) -> bool:
    """An endpoint ECS can use: not failed or deleted, and, for an Interface endpoint,
    with private DNS (ECS and the container agent call the services' public names)."""
    return str(state) in USABLE_ENDPOINT_STATES and (gateway or private_dns is not False)


def endpoints_from(raw: Iterable[Mapping[str, Any]]) -> list[Endpoint]:
    found = []
    for e in raw:
        gateway = e.get("VpcEndpointType") == "Gateway"
        if usable(e.get("State", "available"), gateway, e.get("PrivateDnsEnabled")):
            found.append(
                Endpoint(str(e["ServiceName"]), gateway, frozenset(e.get("RouteTableIds") or ()))
            )
    return found


def wants(target: Target, region: str) -> Wants:
    spec = target.spec
    services = {
        "secretsmanager" if ":secretsmanager:" in a else "ssm" for a in spec.secrets.values()
    }
    if spec.tls.enabled:  # the certificates reach the tasks as ECS secrets
        services.add("secretsmanager")
    return Wants(
        region=region,
        images=tuple(
            dict.fromkeys(
                [spec.image, *(task_definitions.image(spec, "worker", g) for g in spec.group_names)]
            )
        ),
        secret_services=tuple(sorted(services)),
    )


def observe(
    aws: Aws, vpc_id: str, subnet_ids: Sequence[str]
) -> tuple[list[Subnet], list[Endpoint]]:
    """Two reads (a page each), however many subnets: the VPC's route tables (the subnets'
    own and the main one, for a subnet with none of its own) and the VPC's endpoints."""
    filters: Any = [{"Name": "vpc-id", "Values": [vpc_id]}]
    every = [
        table
        for page in aws.ec2.get_paginator("describe_route_tables").paginate(Filters=filters)
        for table in page["RouteTables"]
    ]
    wanted = set(subnet_ids)
    tables = [t for t in every if any(a.get("SubnetId") in wanted for a in _links(t))]
    main = next((t for t in every if any(a.get("Main") for a in _links(t))), None)
    endpoints = aws.ec2.describe_vpc_endpoints(Filters=filters)["VpcEndpoints"]
    return subnets_from(subnet_ids, tables, main), endpoints_from(endpoints)


def _links(table: Any) -> list[Any]:
    return list(table.get("Associations", []))


def check(aws: Aws, target: Target, vpc_id: str, subnet_ids: Sequence[str]) -> Decision:
    subnets, endpoints = observe(aws, vpc_id, subnet_ids)
    spec = target.spec.network.assign_public_ip
    return decide(subnets, endpoints, wants(target, aws.region), spec)
