"""Task metadata endpoint documents (v4, also served as v3), built from a running task.

Field names follow AWS's documented responses for `${ECS_CONTAINER_METADATA_URI_V4}` (one
container) and `${ECS_CONTAINER_METADATA_URI_V4}/task`; only the well-known fields are
filled. `DockerId` is `<task id>-<pid>`, the runtime id DescribeTasks reports. Call with the
shared lock held: the task object is moto's and the data plane edits it.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from dask_aws.local import taskstate

if TYPE_CHECKING:
    from dask_aws.local.dataplane import TaskRuntime

# Task-level statuses the agent reports; the data plane's finer steps map onto them.
_KNOWN_STATUS = {
    "PROVISIONING": "PENDING",
    "ACTIVATING": "PENDING",
    "DEACTIVATING": "RUNNING",
    "STOPPING": "RUNNING",
    "DEPROVISIONING": "STOPPED",
}


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, datetime.datetime):
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _drop_none(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not None}


def _known(status: Any) -> str:
    text = str(status or "PENDING")
    return _KNOWN_STATUS.get(text, text)


def _network(runtime: TaskRuntime) -> dict[str, Any]:
    return {
        "NetworkMode": str(getattr(runtime.task_def, "network_mode", None) or "awsvpc"),
        "IPv4Addresses": [runtime.ip],
        "AttachmentIndex": 0,
        "PrivateDNSName": taskstate.dns_name(runtime.ip),
    }


def container_document(runtime: TaskRuntime, name: str) -> dict[str, Any]:
    """`${ECS_CONTAINER_METADATA_URI_V4}`: the container the variable was given to."""
    task = runtime.task
    definition = next((d for d in runtime.definitions() if d.get("name") == name), {})
    container = runtime.container(name)
    process = runtime.processes.get(name)
    task_arn = runtime.arn
    cluster_arn = str(getattr(task, "cluster_arn", "") or runtime.cluster)
    family = str(getattr(runtime.task_def, "family", ""))
    log = definition.get("logConfiguration") or {}
    log_options = dict(log.get("options") or {})
    if log.get("logDriver") == "awslogs" and "awslogs-stream-prefix" in log_options:
        prefix = log_options.pop("awslogs-stream-prefix")
        log_options["awslogs-stream"] = f"{prefix}/{name}/{runtime.task_id}"
    status = getattr(container, "last_status", None) or "PENDING"
    document: dict[str, Any] = {
        "DockerId": f"{runtime.task_id}-{process.pid}" if process is not None else None,
        "Name": name,
        "DockerName": name,
        "Image": definition.get("image"),
        "Labels": {
            "com.amazonaws.ecs.cluster": cluster_arn,
            "com.amazonaws.ecs.container-name": name,
            "com.amazonaws.ecs.task-arn": task_arn,
            "com.amazonaws.ecs.task-definition-family": family,
            "com.amazonaws.ecs.task-definition-version": str(
                getattr(runtime.task_def, "revision", "")
            ),
        },
        "DesiredStatus": str(task.desired_status or "RUNNING"),
        "KnownStatus": str(status),
        "Limits": _drop_none(
            {
                "CPU": int(definition.get("cpu") or 0),
                "Memory": definition.get("memory") or definition.get("memoryReservation"),
            }
        ),
        "CreatedAt": _timestamp(getattr(task, "created_at", None)),
        "StartedAt": _timestamp(getattr(task, "started_at", None)),
        "Type": "NORMAL",
        "ContainerARN": getattr(container, "container_arn", None),
        "LogDriver": log.get("logDriver"),
        "LogOptions": log_options or None,
        "Networks": [_network(runtime)],
    }
    exit_code = runtime.exit_codes.get(name)
    if exit_code is not None:
        document["ExitCode"] = exit_code
    return _drop_none(document)


def _task_limits(runtime: TaskRuntime) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    cpu = getattr(runtime.task_def, "cpu", None)
    memory = getattr(runtime.task_def, "memory", None)
    if cpu:
        limits["CPU"] = int(cpu) / 1024  # vCPUs, as the endpoint reports them
    if memory:
        limits["Memory"] = int(memory)
    return limits


def task_document(runtime: TaskRuntime) -> dict[str, Any]:
    """`${ECS_CONTAINER_METADATA_URI_V4}/task`: the task and all its containers."""
    task = runtime.task
    document: dict[str, Any] = {
        "Cluster": str(getattr(task, "cluster_arn", "") or runtime.cluster),
        "TaskARN": runtime.arn,
        "Family": str(getattr(runtime.task_def, "family", "")),
        "Revision": str(getattr(runtime.task_def, "revision", "")),
        "DesiredStatus": str(task.desired_status or "RUNNING"),
        "KnownStatus": _known(task.last_status),
        "Limits": _task_limits(runtime),
        "PullStartedAt": _timestamp(getattr(task, "pull_started_at", None)),
        "PullStoppedAt": _timestamp(getattr(task, "pull_stopped_at", None)),
        "AvailabilityZone": getattr(task, "availability_zone", None),
        "LaunchType": runtime.launch_type or None,
        "Containers": [
            container_document(runtime, str(d.get("name"))) for d in runtime.definitions()
        ],
    }
    return _drop_none(document)
