"""Measuring on the local AWS: server-side API call counts and resource snapshots.

API calls are counted on the server, so that both clients (boto3 in dask-aws, aiobotocore in
dask-cloudprovider's own process) are counted the same way: moto's request recorder is on in
the local AWS server process (MOTO_ENABLE_RECORDING, MOTO_RECORDER_FILEPATH; moto records
every request its app dispatches, behind the local middleware, which serialises them under
one lock, so one request is one line). The operation is read from each request the way the
local middleware reads it (SigV4 credential scope + X-Amz-Target, or the query `Action`).
The benchmark's own probes carry a user-agent marker and are left out.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.config import Config
from tests.fixtures import recorded_aws

PROBE_MARKER = "dask-aws-benchmark-probe"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


# -- the local AWS with a request recording ---------------------------------------------------
class RecordedAws(recorded_aws.RecordedAws):
    """The local AWS with its request recording, plus the benchmark's call counts."""

    def calls(self, start: int, end: int | None = None) -> Counter[str]:
        """`service:Operation` -> count for the requests recorded in [start, end)."""
        found: Counter[str] = Counter()
        for entry in self.entries(start, end):
            operation = operation_of(entry)
            if operation is not None:
                found[operation] += 1
        return found

    def client(self, service: str) -> Any:
        """A boto3 client for the benchmark's own probes (left out of the counts)."""
        return boto3.client(
            service,
            config=Config(user_agent_extra=PROBE_MARKER),
            **self.local.client_kwargs(),
        )


def operation_of(entry: dict[str, Any]) -> str | None:
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    if PROBE_MARKER in headers.get("user-agent", ""):
        return None
    match = _SCOPE.search(headers.get("authorization", ""))
    if not match:
        return None  # not a signed AWS API call (e.g. /moto-api)
    service = match.group(1).lower()
    target = headers.get("x-amz-target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    actions = parse_qs(body).get("Action")
    if not actions:
        query = entry.get("url", "").partition("?")[2]
        actions = parse_qs(query).get("Action") or ["?"]
    return f"{service}:{actions[0]}"


# -- what exists on the account ----------------------------------------------------------------
KINDS = (
    "ECS clusters ACTIVE",
    "task definitions ACTIVE",
    "IAM roles",
    "security groups",
    "log groups",
    "tasks desired RUNNING",
)


@dataclass
class Snapshot:
    items: dict[str, set[str]] = field(default_factory=dict)

    def minus(self, before: Snapshot) -> dict[str, list[str]]:
        return {k: sorted(self.items[k] - before.items.get(k, set())) for k in KINDS}


def snapshot(aws: RecordedAws) -> Snapshot:
    ecs, iam, ec2, logs = (aws.client(s) for s in ("ecs", "iam", "ec2", "logs"))
    clusters: list[str] = []
    for page in ecs.get_paginator("list_clusters").paginate():
        clusters.extend(page["clusterArns"])
    active: set[str] = set()
    running: set[str] = set()
    for chunk in range(0, len(clusters), 100):
        described = ecs.describe_clusters(clusters=clusters[chunk : chunk + 100])["clusters"]
        active.update(c["clusterArn"] for c in described if c.get("status") == "ACTIVE")
    for arn in clusters:
        with contextlib.suppress(ecs.exceptions.ClientError):
            for page in ecs.get_paginator("list_tasks").paginate(
                cluster=arn, desiredStatus="RUNNING"
            ):
                running.update(page["taskArns"])
    definitions: set[str] = set()
    for page in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE"):
        definitions.update(page["taskDefinitionArns"])
    roles: set[str] = set()
    for page in iam.get_paginator("list_roles").paginate():
        roles.update(r["RoleName"] for r in page["Roles"])
    groups: set[str] = set()
    for page in ec2.get_paginator("describe_security_groups").paginate():
        groups.update(f"{g['GroupId']} ({g['GroupName']})" for g in page["SecurityGroups"])
    log_groups: set[str] = set()
    for page in logs.get_paginator("describe_log_groups").paginate():
        log_groups.update(g["logGroupName"] for g in page["logGroups"])
    return Snapshot(
        dict(
            zip(
                KINDS,
                (active, definitions, roles, groups, log_groups, running),
                strict=True,
            )
        )
    )


def stopped_reasons(aws: RecordedAws) -> Counter[str]:
    """stoppedReason of every STOPPED task (why a task did not run)."""
    ecs = aws.client("ecs")
    found: Counter[str] = Counter()
    for page in ecs.get_paginator("list_clusters").paginate():
        for cluster in page["clusterArns"]:
            arns = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
            for chunk in range(0, len(arns), 100):
                tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[chunk : chunk + 100])
                found.update(t.get("stoppedReason", "?") for t in tasks["tasks"])
    return found
