"""Shared test plumbing for engine tests: clients on the local AWS, call counting, leak scans."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Collection
from typing import Any

import boto3

from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec

READ_PREFIXES = ("Describe", "List", "Get")


class CallLog:
    """Every AWS API call made through one session, by operation name."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[str] = []
        session.events.register("before-call", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> Counter[str]:
        return Counter(self.calls[mark:])

    def mutating_since(self, mark: int) -> Counter[str]:
        return Counter(c for c in self.calls[mark:] if not c.startswith(READ_PREFIXES))


def session_for(endpoint_url: str) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def aws_for(endpoint_url: str) -> tuple[Aws, CallLog]:
    session = session_for(endpoint_url)
    return Aws(session=session, region="us-east-1", endpoint_url=endpoint_url), CallLog(session)


def target(name: str = "demo", **spec: Any) -> Target:
    owner = Owner(uid=str(uuid.uuid4()), name=name, namespace="team-a")
    spec.setdefault("workers", {"replicas": 1, "cpu": 1024, "memory": 2048})
    return Target(owner=owner, spec=DaskAwsClusterSpec.model_validate(spec))


def converge(aws: Aws, tgt: Target, *, timeout: float = 60.0, **kwargs: Any) -> Result:
    """Reconcile until Ready, as the operator's requeues would."""
    deadline = time.monotonic() + timeout
    while True:
        result = reconcile(aws, tgt, **kwargs)
        if result.error is not None:
            raise AssertionError(f"reconcile failed: {result.error.message}")
        if result.ready:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not Ready after {timeout}s: {result.status.wire()}")
        time.sleep(0.2)


def tagged_resources(aws: Aws, owner_uids: str | Collection[str]) -> list[str]:
    """Everything on the (local) AWS that carries one of these owners' tag and still exists."""
    uids = {owner_uids} if isinstance(owner_uids, str) else set(owner_uids)
    found: list[str] = []

    def owned(items: dict[str, str]) -> bool:
        return items.get(tags.OWNER_UID) in uids

    clusters = aws.ecs.list_clusters()["clusterArns"]
    for start in range(0, len(clusters), 100):
        part = clusters[start : start + 100]
        for c in aws.ecs.describe_clusters(clusters=part, include=["TAGS"])["clusters"]:
            if c.get("status") == "ACTIVE" and owned(tags.from_list(c.get("tags"))):
                found.append(c["clusterArn"])
    for cluster in clusters:
        running = aws.ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
        for start in range(0, len(running), 100):
            part = running[start : start + 100]
            described = aws.ecs.describe_tasks(cluster=cluster, tasks=part)["tasks"]
            found.extend(t["taskArn"] for t in described if t.get("startedBy") in uids)
    for arn in aws.ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]:
        reply = aws.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        if owned(tags.from_list(reply.get("tags"))):
            found.append(arn)
    for role in aws.iam.list_roles()["Roles"]:
        if owned(tags.from_list(aws.iam.list_role_tags(RoleName=role["RoleName"])["Tags"])):
            found.append(role["Arn"])
    for group in aws.ec2.describe_security_groups()["SecurityGroups"]:
        if owned(tags.from_list(group.get("Tags"))):
            found.append(group["GroupId"])
    for group in aws.logs.describe_log_groups()["logGroups"]:
        name = group["logGroupName"]
        if owned(aws.logs.list_tags_log_group(logGroupName=name).get("tags", {})):
            found.append(name)
    return found
