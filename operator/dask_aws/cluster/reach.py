"""How this client reaches the scheduler: at which address, and whom the security group lets in.

Two paths (`fargate_use_private_ip`; unset: chosen at start by where this machine is):

* private (True; inside the cluster's VPC): the scheduler's private IP; the VPC's CIDR
  blocks may connect. Tasks still get a public IP where their subnet needs one to pull the
  image (network.assignPublicIp unset); the security group keeps everyone else out.
* public (False; outside the VPC, e.g. a laptop): the tasks get public IPs and only this
  machine's public address may connect, as a /32 learnt from `dask_aws.checkip-url`
  (https://checkip.amazonaws.com: the address AWS sees, NAT included) unless
  allowed_client_cidrs names the clients. The scheduler speaks TLS (the `security` default).

Never 0.0.0.0/0, unless the user lists it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.request
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from dask_aws.aws import network
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.cluster import config
from dask_aws.errors import PermanentError
from dask_aws.status import ClusterStatus

Path = Literal["auto", "private", "public"]
CHECKIP_TIMEOUT = 10.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def vpc_cidrs(aws: Aws, target: Target) -> list[str]:
    """The IPv4 CIDR blocks of the cluster's VPC. Reads the VPC only."""
    vpc = network.vpc(aws, target)
    cidrs = [
        a["CidrBlock"]
        for a in vpc.get("CidrBlockAssociationSet", [])
        if a.get("CidrBlockState", {}).get("State", "associated") == "associated"
    ] or [vpc["CidrBlock"]]
    return sorted(set(cidrs))


def interface_addresses() -> list[str]:
    """This machine's own addresses, loopback and link-local left out."""
    import psutil  # type: ignore[import-untyped]  # distributed's dependency; no stubs

    found = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                address = ipaddress.ip_address(entry.address.split("%", 1)[0])
            except ValueError:
                continue
            if not (address.is_loopback or address.is_link_local):
                found.append(str(address))
    return found


def inside(cidrs: Iterable[str], addresses: Iterable[str]) -> bool:
    """Whether this machine is inside the VPC: one of its addresses lies in one of the VPC's
    CIDR blocks. A heuristic, cheap and right for EC2, ECS, EKS or SageMaker in that VPC. A
    machine reaching the VPC over peering or a VPN counts as outside (it then takes the
    public path; fargate_use_private_ip=True keeps it private), and one in another network
    that reuses the VPC's private range counts as inside (fargate_use_private_ip=False)."""
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    return any(
        ipaddress.ip_address(a) in n
        for a in addresses
        for n in networks
        if ipaddress.ip_address(a).version == n.version
    )


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def caller_cidr(url: str) -> str:
    """This machine's public address as `url` sees it (checkip: the address as text), /32."""
    hint = (
        "pass allowed_client_cidrs=['<your public IP>/32'] (or, inside the cluster's VPC, "
        "fargate_use_private_ip=True)"
    )
    if os.environ.get("DASK_AWS_LOOPBACK_ONLY") == "1" and not _loopback(url):
        raise PermanentError(
            "PublicAddressUnknown",
            f"dask_aws.checkip-url {url} is not a loopback address (DASK_AWS_LOOPBACK_ONLY=1): "
            f"{hint}",
        )
    opener = _NO_PROXY if _loopback(url) else urllib.request.build_opener()
    try:
        with opener.open(url, timeout=CHECKIP_TIMEOUT) as reply:
            text = reply.read(100).decode("ascii", "replace").strip()
        address = ipaddress.ip_address(text)
    except (OSError, ValueError) as exc:
        raise PermanentError(
            "PublicAddressUnknown",
            f"could not learn this machine's public address from {url} ({exc}): {hint}",
        ) from None
    return f"{address}/{address.max_prefixlen}"


def prepare(aws: Aws, target: Target, path: Path, cidrs_given: bool) -> tuple[Target, str]:
    """The target with what `path` needs (its client CIDR blocks, a public IP for the public
    path) and a line saying whom that lets in. Reads the VPC only, and the checkip URL."""
    spec = target.spec
    cidrs = list(spec.network.allowed_client_cidrs)
    vpc: list[str] = []
    if path == "auto" or (path == "private" and not cidrs_given):
        vpc = vpc_cidrs(aws, target)
    if path == "auto":
        path = "private" if inside(vpc, interface_addresses()) else "public"
    update: dict[str, Any] = {}
    if path == "public":
        update["assign_public_ip"] = True
        if not cidrs_given:
            url = str(config.get("checkip-url"))
            cidrs = [caller_cidr(url)]
            line = f"only this machine's public address {cidrs[0]} (from {url}) may connect"
        else:
            line = f"only {', '.join(cidrs)} may connect"
        line = f"outside the VPC: the scheduler gets a public IP; {line}"
    else:
        cidrs = cidrs if cidrs_given else vpc
        line = f"inside the VPC: the scheduler's private IP; {', '.join(cidrs)} may connect"
    update["allowed_client_cidrs"] = cidrs
    net = spec.network.model_copy(update=update)
    return Target(target.owner, spec.model_copy(update={"network": net})), line


def public_address(aws: Aws, target: Target, status: ClusterStatus) -> str | None:
    """The scheduler's address at its task's public IP (scheme and port as the status has
    them, tls:// or tcp://), if the task has one."""
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
    scheme = (status.scheduler_address or "tcp://").split("://", 1)[0]
    return f"{scheme}://{public}:{target.spec.scheduler.port}" if public else None


def unreachable(target: Target, address: str, error: object) -> str:
    """Why the scheduler did not answer, and what to change, for the path taken."""
    net = target.spec.network
    start = f"the scheduler runs at {address} but cannot be reached from here ({error})"
    if net.assign_public_ip:
        return (
            f"{start}. Its security group admits {', '.join(net.allowed_client_cidrs)} on the "
            "scheduler and dashboard ports: if this machine reaches AWS from another address "
            "(a proxy, a VPN), pass allowed_client_cidrs=['<that address>/32']; inside the "
            "cluster's VPC, pass fargate_use_private_ip=True"
        )
    return (
        f"{start}. It has a private IP: run this client inside the cluster's VPC (allowed by "
        "default), or pass fargate_use_private_ip=False for a public IP that only your "
        "public address may reach"
    )
