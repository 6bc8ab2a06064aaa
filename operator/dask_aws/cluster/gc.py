"""`dask-aws gc`: remove what Python clusters left behind when their process was killed.

Finds resources by the dask-aws ownership tags (reading tags only where a name follows our
patterns), groups them by owner, and collects a
FargateCluster/ECSCluster owner only when it is gone: its process on this host has exited,
or (on another host) its heartbeat tag is older than --stale-after. Operator-owned
clusters (owner-kind DaskAwsCluster), live Python clusters and anything dask-aws did not
create (your cluster_arn, roles, security groups, log group) are never touched. Dry run
unless --yes.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from dask_aws.aws import tags
from dask_aws.aws.clients import Aws, connect
from dask_aws.aws.found import Target
from dask_aws.names import LOG_GROUP_PREFIX, NAME_PREFIX, Owner
from dask_aws.spec import DaskAwsClusterSpec

ROLE_NAME = re.compile(rf"^{re.escape(NAME_PREFIX)}.+-[0-9a-f]{{8}}-(exec|task)$")
FAMILY_NAME = re.compile(rf"^{re.escape(NAME_PREFIX)}.+-[0-9a-f]{{8}}-(scheduler|worker)$")
SECRET_NAME = re.compile(rf"^{re.escape(NAME_PREFIX)}.+-[0-9a-f]{{8}}-tls$")
LIVENESS_KEYS = (tags.HOST, tags.PROCESS, tags.ECS_CLUSTER)


@dataclass
class Owned:
    """Everything found for one owner uid."""

    uid: str
    name: str = ""
    kind: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    vpc: str | None = None
    resources: list[str] = field(default_factory=list)

    def add(self, resource: str, found: Mapping[str, str]) -> None:
        self.resources.append(resource)
        self.name = found.get(tags.OWNER, self.name)
        self.kind = found.get(tags.OWNER_KIND, self.kind)
        for key in LIVENESS_KEYS:
            if key in found:
                self.tags[key] = found[key]
        beat = found.get(tags.HEARTBEAT)
        if beat and _float(beat) > _float(self.tags.get(tags.HEARTBEAT, "0")):
            self.tags[tags.HEARTBEAT] = beat


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def _ours(found: Mapping[str, str]) -> str | None:
    if found.get(tags.MANAGED_BY) != tags.MANAGED_BY_VALUE:
        return None
    return found.get(tags.OWNER_UID) or None


def _clusters(aws: Aws) -> Iterator[tuple[str, dict[str, str]]]:
    arns = [
        a for page in aws.ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]
    ]
    for start in range(0, len(arns), 100):
        reply = aws.ecs.describe_clusters(clusters=arns[start : start + 100], include=["TAGS"])
        for cluster in reply["clusters"]:
            if cluster.get("status") == "ACTIVE":
                yield cluster["clusterArn"], tags.from_list(cluster.get("tags"))


def _security_groups(aws: Aws) -> Iterator[tuple[str, dict[str, str], str]]:
    pages = aws.ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": f"tag:{tags.MANAGED_BY}", "Values": [tags.MANAGED_BY_VALUE]}]
    )
    for page in pages:
        for group in page["SecurityGroups"]:
            yield group["GroupId"], tags.from_list(group.get("Tags")), group["VpcId"]


def _roles(aws: Aws) -> Iterator[tuple[str, dict[str, str]]]:
    for page in aws.iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if ROLE_NAME.match(role["RoleName"]):
                try:
                    found = aws.iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
                except aws.iam.exceptions.NoSuchEntityException:
                    continue  # deleted meanwhile (a cluster closing now)
                yield role["Arn"], tags.from_list(found)


def _log_groups(aws: Aws) -> Iterator[tuple[str, dict[str, str]]]:
    pages = aws.logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=LOG_GROUP_PREFIX
    )
    for page in pages:
        for group in page["logGroups"]:
            name = group["logGroupName"]
            try:
                found = aws.logs.list_tags_log_group(logGroupName=name).get("tags", {})
            except aws.logs.exceptions.ResourceNotFoundException:
                continue
            yield name, dict(found)


def _tls_secrets(aws: Aws) -> Iterator[tuple[str, dict[str, str]]]:
    pages = aws.secretsmanager.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [NAME_PREFIX]}]
    )
    for page in pages:
        for secret in page["SecretList"]:
            if SECRET_NAME.match(secret["Name"]) and not secret.get("DeletedDate"):
                yield secret["ARN"], tags.from_list(secret.get("Tags"))


def _task_definitions(aws: Aws) -> Iterator[tuple[str, dict[str, str]]]:
    pages = aws.ecs.get_paginator("list_task_definition_families").paginate(
        familyPrefix=NAME_PREFIX, status="ACTIVE"
    )
    for page in pages:
        for family in page["families"]:
            if not FAMILY_NAME.match(family):
                continue
            try:
                reply = aws.ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
            except aws.ecs.exceptions.ClientException:
                continue  # no ACTIVE revision left
            arn = reply["taskDefinition"]["taskDefinitionArn"]
            yield arn, tags.from_list(reply.get("tags"))


def inventory(aws: Aws) -> dict[str, Owned]:
    """Every owner uid with at least one resource carrying our tags."""
    owners: dict[str, Owned] = {}

    def note(resource: str, found: Mapping[str, str]) -> Owned | None:
        uid = _ours(found)
        if uid is None:
            return None
        owned = owners.setdefault(uid, Owned(uid))
        owned.add(resource, found)
        return owned

    for arn, found in _clusters(aws):
        note(arn, found)
    for group_id, found, vpc in _security_groups(aws):
        owned = note(group_id, found)
        if owned is not None:
            owned.vpc = vpc
    for source in (_roles, _log_groups, _tls_secrets, _task_definitions):
        for resource, found in source(aws):
            note(resource, found)
    return owners


def target_for(aws: Aws, owned: Owned) -> Target:
    """The Target delete needs: names derive from the owner (name + uid) alone; the user's
    cluster (where the tasks run) and the VPC (where the group is) come from the tags."""
    owner = Owner(uid=owned.uid, name=owned.name, kind=owned.kind)
    raw: dict[str, Any] = {}
    cluster = owned.tags.get(tags.ECS_CLUSTER)
    if cluster:
        raw["clusterArn"] = (
            f"arn:{aws.partition}:ecs:{aws.region}:{aws.account_id}:cluster/{cluster}"
        )
    if owned.vpc:
        raw["network"] = {"vpc": owned.vpc}
    return Target(owner, DaskAwsClusterSpec.model_validate(raw))


def collect(
    aws: Aws,
    *,
    yes: bool,
    stale_after: float,
    only: set[str] | None = None,
    out: TextIO = sys.stdout,
    timeout: float = 600.0,
) -> int:
    """Report (and with `yes`, delete) the resources of gone Python owners; exit status."""
    from dask_aws.cluster.cleanup import Teardown, TeardownError
    from dask_aws.cluster.liveness import PYTHON_KINDS, verdict

    now = time.time()
    failures = 0
    gone = 0
    for owned in sorted(inventory(aws).values(), key=lambda o: o.uid):
        if only is not None and owned.uid not in only:
            continue
        label = f"{owned.kind or '?'} {owned.name or '?'} ({owned.uid})"
        if owned.kind not in PYTHON_KINDS or "/" in owned.name:
            print(f"skip  {label}: not a Python-owned cluster", file=out)
            continue
        judged = verdict(owned.tags, stale_after, now)
        if not judged.gone:
            print(f"keep  {label}: {judged.reason}", file=out)
            continue
        gone += 1
        print(f"gone  {label}: {judged.reason}; {len(owned.resources)} resource(s)", file=out)
        for resource in owned.resources:
            print(f"        {resource}", file=out)
        if not yes:
            continue
        try:
            Teardown(aws, target_for(aws, owned), timeout)()
        except (TeardownError, ValueError) as exc:
            failures += 1
            print(f"error {label}: {exc}", file=out)
        else:
            print(f"deleted {label}", file=out)
    if gone and not yes:
        print(f"dry run: {gone} gone owner(s); run again with --yes to delete", file=out)
    elif not gone:
        print("nothing to collect", file=out)
    return 1 if failures else 0


def _run(args: argparse.Namespace) -> int:
    from dask.utils import parse_timedelta

    from dask_aws.cluster import config

    stale = args.stale_after or config.get("gc.stale-after")
    aws = connect(region=args.region)
    return collect(
        aws,
        yes=args.yes,
        stale_after=float(parse_timedelta(stale, default="seconds") or 0),
        only=set(args.owner) if args.owner else None,
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gc",
        help="delete AWS resources left by killed FargateCluster/ECSCluster processes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--yes", action="store_true", help="delete (default: dry run)")
    parser.add_argument(
        "--stale-after",
        help="an owner on another host is gone after this long without a heartbeat "
        "(default: dask_aws.gc.stale-after, 10 minutes)",
    )
    parser.add_argument("--region", help="AWS region (default: the session's)")
    parser.add_argument("--owner", action="append", help="only this owner uid (repeatable)")
    parser.set_defaults(func=_run)
