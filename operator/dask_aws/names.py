"""Deterministic AWS names for one owner.

Every name is a pure function of the owner (namespace, name, uid), so a crashed
reconcile finds what it created by name alone. Names are shortened and given a hash
suffix from the uid so that any Kubernetes name fits the tightest AWS limit (IAM role
names: 64 characters) and two owners with the same name never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

MAX_OWNER_NAME = 253  # the Kubernetes limit for an object name
# Every ECS cluster, role, security group and task definition family we create starts with
# NAME_PREFIX, every log group with LOG_GROUP_PREFIX: `dask-aws gc` lists by them and the
# IAM policy scopes its resources to them.
NAME_PREFIX = "dask-"
LOG_GROUP_PREFIX = "/dask-aws/"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_UNSAFE = re.compile(r"[^a-zA-Z0-9-]+")


def owner_name_error(name: str) -> str | None:
    if not name:
        return "the cluster name must not be empty"
    if len(name) > MAX_OWNER_NAME:
        return f"the cluster name is {len(name)} characters long; at most {MAX_OWNER_NAME} fit"
    if not _DNS_SUBDOMAIN.match(name):
        return (
            f"the cluster name {name!r} must be lower case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


@dataclass(frozen=True)
class Owner:
    """Who owns a set of AWS resources: a DaskAwsCluster object or a Python cluster."""

    uid: str
    name: str
    namespace: str | None = None
    kind: str = "DaskAwsCluster"
    # Extra tags written with the ownership tags on every resource at creation (the Python
    # front end records its host, process and start time here). Not part of any name.
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        error = owner_name_error(self.name)
        if error:
            raise ValueError(error)
        if not self.uid or len(self.uid) > 36:
            raise ValueError("the owner uid must be 1 to 36 characters (ECS startedBy limit)")

    @property
    def display(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def suffix(self) -> str:
        return hashlib.sha256(self.uid.encode()).hexdigest()[:8]

    def short(self, limit: int, prefix: str = NAME_PREFIX, tail: str = "") -> str:
        """prefix + readable part + '-' + hash + tail, at most `limit` characters."""
        readable = _UNSAFE.sub("-", self.display.replace("/", "-")).strip("-")
        room = limit - len(prefix) - len(tail) - len(self.suffix) - 1
        return f"{prefix}{readable[:room].rstrip('-')}-{self.suffix}{tail}"


@dataclass(frozen=True)
class ResourceNames:
    ecs_cluster: str
    execution_role: str
    task_role: str
    security_group: str
    log_group: str
    scheduler_family: str
    worker_family: str
    tls_secret: str

    @classmethod
    def for_owner(cls, owner: Owner) -> ResourceNames:
        return cls(
            ecs_cluster=owner.short(255),
            execution_role=owner.short(64, tail="-exec"),
            task_role=owner.short(64, tail="-task"),
            security_group=owner.short(255),
            log_group=LOG_GROUP_PREFIX + owner.short(200, prefix=""),
            scheduler_family=owner.short(255, tail="-scheduler"),
            worker_family=owner.short(255, tail="-worker"),
            tls_secret=owner.short(200, tail="-tls"),
        )
