"""Ownership tags: how every resource we create is found again, and told apart from others'."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from dask_aws.names import Owner

PREFIX = "dask-aws.io/"
MANAGED_BY = PREFIX + "managed-by"
OWNER_UID = PREFIX + "owner-uid"
OWNER = PREFIX + "owner"
OWNER_KIND = PREFIX + "owner-kind"
# The owner's Kubernetes namespace alone, so Cost Explorer can split the bill by team.
NAMESPACE = PREFIX + "namespace"
RETAINED = PREFIX + "retained"
SPEC_HASH = PREFIX + "spec-hash"
# Liveness of a Python-owned cluster, read by `dask-aws gc`: where its process runs, and
# the last time it said it was alive (unix seconds). Set at creation, refreshed while alive.
HOST = PREFIX + "host"
PROCESS = PREFIX + "process"  # "<pid>:<process start time, unix seconds>"
HEARTBEAT = PREFIX + "heartbeat"
TLS_NOT_AFTER = PREFIX + "tls-not-after"  # RFC 3339: the certificates' expiry, no secret
TLS_VALIDITY_DAYS = PREFIX + "tls-validity-days"  # what they were issued for
WORKER_GROUP = PREFIX + "worker-group"  # a named group's tasks and task definition, for billing
ECS_CLUSTER = PREFIX + "ecs-cluster"  # the user's cluster the tasks run in, when not ours
MANAGED_BY_VALUE = "dask-aws"


def ownership(owner: Owner, user_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        **(user_tags or {}),
        **dict(owner.labels),
        MANAGED_BY: MANAGED_BY_VALUE,
        OWNER_UID: owner.uid,
        OWNER: fit_value(owner.display),
        OWNER_KIND: owner.kind,
        **({NAMESPACE: owner.namespace} if owner.namespace else {}),
    }


MAX_VALUE = 256  # AWS's limit for a tag value (IAM, EC2, ECS, Logs alike)


def fit_value(value: str) -> str:
    """A tag value AWS takes: a namespace/name can be 253 + 1 + 253 characters long."""
    if len(value) <= MAX_VALUE:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: MAX_VALUE - len(digest) - 1]}-{digest}"


def is_owned_by(tags: Mapping[str, str], owner: Owner) -> bool:
    return tags.get(OWNER_UID) == owner.uid and tags.get(MANAGED_BY) == MANAGED_BY_VALUE


def as_aws(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """IAM, EC2 style: Key/Value."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def as_ecs(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """ECS style: key/value."""
    return [{"key": k, "value": v} for k, v in tags.items()]


def from_list(items: Iterable[Any] | None) -> dict[str, str]:
    """Tags from either AWS list style (Key/Value or key/value)."""
    result: dict[str, str] = {}
    item: Mapping[str, str]
    for item in items or ():
        key = item.get("Key", item.get("key"))
        value = item.get("Value", item.get("value", ""))
        if key is not None:
            result[key] = value
    return result
