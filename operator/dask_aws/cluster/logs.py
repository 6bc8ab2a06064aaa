"""Container logs from CloudWatch Logs (the awslogs driver's streams), per task."""

from __future__ import annotations

from collections.abc import Mapping

from dask_aws.aws import log_group
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import CONTAINER
from dask_aws.engine.scheduler_api import host_of

MAX_EVENTS = 10_000  # per stream


def stream(target: Target, task: ecs_tasks.Task) -> str:
    return f"{target.spec.logs.stream_prefix}/{CONTAINER[task.component]}/{task.id}"


def read_stream(aws: Aws, group: str, name: str) -> str:
    lines: list[str] = []
    token: str | None = None
    while len(lines) < MAX_EVENTS:
        kwargs = {"logGroupName": group, "logStreamName": name, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        try:
            reply = aws.logs.get_log_events(**kwargs)  # type: ignore[arg-type]
        except aws.logs.exceptions.ResourceNotFoundException:
            break  # the task has written nothing yet
        lines.extend(e["message"] for e in reply["events"])
        if not reply["events"] or reply.get("nextForwardToken") == token:
            break
        token = reply.get("nextForwardToken")
    return "\n".join(lines[:MAX_EVENTS])


def read(
    aws: Aws,
    target: Target,
    cluster_arn: str,
    worker_addresses: Mapping[str, str],
    scheduler: bool = True,
    workers: bool = True,
) -> dict[str, str]:
    """{"Scheduler": text, <worker address or "worker <task id>">: text} for live tasks.

    `worker_addresses`: task IP -> the worker's Dask address, for readable keys.
    """
    group = log_group.name(target)
    result: dict[str, str] = {}
    for task in ecs_tasks.observe(aws, target, cluster_arn):
        if not task.live:
            continue
        if task.component == "scheduler" and scheduler:
            result["Scheduler"] = read_stream(aws, group, stream(target, task))
        elif task.component == "worker" and workers:
            key = worker_addresses.get(task.ip or "", f"worker {task.id}")
            result[key] = read_stream(aws, group, stream(target, task))
    return result


def addresses_by_ip(worker_infos: Mapping[str, object]) -> dict[str, str]:
    return {host_of(address): address for address in worker_infos}
