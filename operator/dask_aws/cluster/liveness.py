"""Who owns a Python cluster's resources and whether that owner is still alive.

Every resource is created with the owner's host, process (pid and start time) and a first
heartbeat (see `labels`); while the cluster lives, `beat` refreshes the heartbeat on one
resource. `dask-aws gc` reads these back (`verdict`): an owner on this host whose process
is gone is dead at once; any other owner is dead once its newest heartbeat is stale.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]

from dask_aws.aws import ecs_cluster, security_group, tags, task_definitions
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.status import ClusterStatus

logger = logging.getLogger(__name__)
PYTHON_KINDS = ("FargateCluster", "ECSCluster")


def host() -> str:
    return socket.gethostname()[:255] or "unknown"


def process_id(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{int(psutil.Process(pid).create_time())}"


def labels(cluster_arn: str | None) -> tuple[tuple[str, str], ...]:
    """Tags for every resource of a cluster started by this process, now."""
    result = [
        (tags.HOST, host()),
        (tags.PROCESS, process_id()),
        (tags.HEARTBEAT, str(int(time.time()))),
    ]
    if cluster_arn:
        result.append((tags.ECS_CLUSTER, cluster_arn.rsplit("/", 1)[1]))
    return tuple(result)


def beat(aws: Aws, target: Target, status: ClusterStatus) -> str | None:
    """Refresh the heartbeat on one resource we own; returns what was tagged."""
    beat = {tags.HEARTBEAT: str(int(time.time()))}
    found = status.aws
    if found.cluster_arn and not target.spec.cluster_arn:
        ecs_cluster.tag(aws, Found(found.cluster_arn, ours=True), beat)
        return found.cluster_arn
    if found.security_group_id and not target.spec.network.security_groups:
        security_group.tag(aws, Found(found.security_group_id, ours=True), beat)
        return found.security_group_id
    if found.scheduler_task_definition_arn:
        task_definitions.tag(aws, Found(found.scheduler_task_definition_arn, ours=True), beat)
        return found.scheduler_task_definition_arn
    return None


def process_alive(value: str) -> bool:
    """Is the process '<pid>:<start time>' (on this host) still running?"""
    pid_text, _, started = value.partition(":")
    try:
        process = psutil.Process(int(pid_text))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return not started or abs(process.create_time() - float(started)) < 2
    except (ValueError, psutil.Error):
        return False


@dataclass(frozen=True)
class Verdict:
    gone: bool
    reason: str


def verdict(owner_tags: Mapping[str, str], stale_after: float, now: float | None = None) -> Verdict:
    """`owner_tags`: the union of the owner's resources' tags, with the newest heartbeat."""
    now = time.time() if now is None else now
    owner_host = owner_tags.get(tags.HOST)
    process = owner_tags.get(tags.PROCESS)
    if owner_host == host() and process:
        if process_alive(process):
            return Verdict(False, f"process {process.partition(':')[0]} is running on this host")
        return Verdict(True, f"process {process.partition(':')[0]} on this host has exited")
    try:
        heartbeat = float(owner_tags[tags.HEARTBEAT])
    except (KeyError, ValueError):
        return Verdict(False, "no heartbeat recorded; not touched")
    age = now - heartbeat
    where = f" on {owner_host}" if owner_host else ""
    if age > stale_after:
        return Verdict(True, f"no heartbeat{where} for {age:.0f}s (> {stale_after:.0f}s)")
    return Verdict(False, f"heartbeat{where} {age:.0f}s ago")
