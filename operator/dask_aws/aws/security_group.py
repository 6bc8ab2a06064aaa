"""The cluster's security group: its members talk to each other; clients only if allowed.

Nothing is open to 0.0.0.0/0 unless the spec lists it in allowedClientCidrs. When the
spec names security groups, those are used as they are and no group is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.network import Network
from dask_aws.errors import PermanentError, TransientError

Rule = tuple[str, int, int, str]  # protocol, from port, to port, source


def desired_rules(target: Target, group_id: str) -> set[Rule]:
    spec = target.spec
    rules: set[Rule] = {("tcp", 0, 65535, f"sg:{group_id}")}
    for port in sorted({spec.scheduler.port, spec.scheduler.dashboard_port}):
        for cidr in spec.network.allowed_client_cidrs:
            rules.add(("tcp", port, port, ("cidr6:" if ":" in cidr else "cidr:") + cidr))
        for group in spec.network.allowed_client_security_groups:
            rules.add(("tcp", port, port, f"sg:{group}"))
    return rules


def _rules(permissions: list[Any]) -> set[Rule]:
    rules: set[Rule] = set()
    for p in permissions:
        key = (p["IpProtocol"], p.get("FromPort", 0), p.get("ToPort", 65535))
        rules.update((*key, "cidr:" + r["CidrIp"]) for r in p.get("IpRanges", []))
        rules.update((*key, "cidr6:" + r["CidrIpv6"]) for r in p.get("Ipv6Ranges", []))
        rules.update((*key, "sg:" + r["GroupId"]) for r in p.get("UserIdGroupPairs", []))
    return rules


def _permissions(rules: set[Rule]) -> list[Any]:
    result: list[Any] = []
    for protocol, low, high, source in sorted(rules):
        kind, _, value = source.partition(":")
        entry: dict[str, Any] = {"IpProtocol": protocol, "FromPort": low, "ToPort": high}
        if kind == "sg":
            entry["UserIdGroupPairs"] = [{"GroupId": value}]
        elif kind == "cidr6":
            entry["Ipv6Ranges"] = [{"CidrIpv6": value}]
        else:
            entry["IpRanges"] = [{"CidrIp": value}]
        result.append(entry)
    return result


def _tag_specification(target: Target) -> Any:
    owned = tags.as_aws(tags.ownership(target.owner, target.spec.tags))
    return {"ResourceType": "security-group", "Tags": owned}


def _find(aws: Aws, target: Target, network: Network) -> dict[str, Any] | None:
    groups = aws.ec2.describe_security_groups(
        Filters=[
            {"Name": "group-name", "Values": [target.names.security_group]},
            {"Name": "vpc-id", "Values": [network.vpc_id]},
        ]
    )["SecurityGroups"]
    if not groups:
        return None
    group: dict[str, Any] = groups[0]  # type: ignore[assignment]
    if not tags.is_owned_by(tags.from_list(group.get("Tags")), target.owner):
        raise PermanentError(
            "NameConflict",
            f"a security group named {target.names.security_group} exists and is not ours",
        )
    return group


def ids(target: Target, found: Found | None) -> list[str]:
    """The groups the tasks join: the user's, or the one we own."""
    return list(target.spec.network.security_groups) or ([found.id] if found else [])


def observe(aws: Aws, target: Target, network: Network) -> Found | None:
    """The user's groups (checked to exist, never touched) or the one we own."""
    if target.spec.network.security_groups:
        wanted = target.spec.network.security_groups
        groups = aws.ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": wanted}])[
            "SecurityGroups"
        ]
        missing = set(wanted) - {g["GroupId"] for g in groups}
        if missing:
            raise PermanentError("SecurityGroupNotFound", f"security groups {sorted(missing)}")
        return Found(id=wanted[0], ours=False)
    group = _find(aws, target, network)
    if group is None:
        return None
    in_sync = _rules(group.get("IpPermissions", [])) == desired_rules(target, group["GroupId"])
    return Found(id=group["GroupId"], ours=True, in_sync=in_sync)


def ensure(aws: Aws, target: Target, network: Network) -> Found:
    if target.spec.network.security_groups:
        found = observe(aws, target, network)
        assert found is not None
        return found
    # Created first, looked up only when the name is taken (drift repair, a crash after
    # creating it): a new cluster needs no read.
    try:
        group_id = aws.ec2.create_security_group(
            GroupName=target.names.security_group,
            Description=f"dask-aws cluster {target.owner.display}"[:255],
            VpcId=network.vpc_id,
            TagSpecifications=[_tag_specification(target)],
        )["GroupId"]
        have: set[Rule] = set()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidGroup.Duplicate":
            raise
        group = _find(aws, target, network)
        if group is None:  # deleted since: the next step creates it
            raise TransientError("SecurityGroupChanging", str(exc)) from exc
        group_id = group["GroupId"]
        have = _rules(group.get("IpPermissions", []))
    want = desired_rules(target, group_id)
    if have - want:
        aws.ec2.revoke_security_group_ingress(
            GroupId=group_id, IpPermissions=_permissions(have - want)
        )
    if want - have:
        aws.ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=_permissions(want - have)
        )
    return Found(id=group_id, ours=True)


def tag(aws: Aws, found: Found, values: Mapping[str, str]) -> None:
    aws.ec2.create_tags(Resources=[found.id], Tags=tags.as_aws(values))  # type: ignore[arg-type]


def delete(aws: Aws, found: Found) -> None:
    if not found.ours:
        return
    try:
        aws.ec2.delete_security_group(GroupId=found.id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
            return
        if code == "DependencyViolation":
            # Task ENIs are released some time after the tasks stop; try again later.
            raise TransientError("SecurityGroupInUse", str(exc)) from exc
        raise
