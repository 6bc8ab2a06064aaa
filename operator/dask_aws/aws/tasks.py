"""ECS tasks: the scheduler and the workers, found again by startedBy (the owner's uid).

Limits respected here (moto does not enforce them, AWS does): RunTask starts at most 10
tasks a call, DescribeTasks reads at most 100 ARNs a call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.aws.network import Network
from dask_aws.aws.task_definitions import (
    CONTAINER,
    SCHEDULER_ADDRESS_ENV,
    Component,
    comm_address,
)

RUN_BATCH = 10
DESCRIBE_BATCH = 100
GROUP_PREFIX = "dask-aws:"
LIVE = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING")


@dataclass(frozen=True)
class Task:
    arn: str
    component: Component
    last_status: str
    desired_status: str
    task_definition_arn: str
    ip: str | None
    scheduler_task_id: str | None  # for workers: the scheduler they were started for
    started_at: datetime | None
    stopped_at: datetime | None
    stop_code: str | None
    stopped_reason: str | None
    capacity_provider: str | None
    exit_code: int | None = None  # the essential container's, once it has exited
    group: str = ""  # for workers: the worker group ("" is spec.workers)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    @property
    def live(self) -> bool:
        return self.desired_status == "RUNNING" and self.last_status in LIVE

    @property
    def running(self) -> bool:
        return self.live and self.last_status == "RUNNING" and self.ip is not None

    @property
    def interrupted(self) -> bool:
        """A Spot interruption in progress: ECS wants it stopped, its containers still run
        (and a worker hands its data over, aws/drain.py)."""
        return (
            self.stop_code == "SpotInterruption"
            and self.desired_status == "STOPPED"
            and self.last_status in LIVE
        )


def _group(component: Component, scheduler_task_id: str | None, worker_group: str = "") -> str:
    """The ECS task group: dask-aws:<component>[/<worker group>][:<scheduler task id>]."""
    name = f"{GROUP_PREFIX}{component}" + (f"/{worker_group}" if worker_group else "")
    return name + (f":{scheduler_task_id}" if scheduler_task_id else "")


def _parse_group(group: str) -> tuple[Component, str, str | None] | None:
    if not group.startswith(GROUP_PREFIX):
        return None
    part, _, scheduler = group[len(GROUP_PREFIX) :].partition(":")
    component, _, worker_group = part.partition("/")
    if component not in ("scheduler", "worker"):
        return None
    return component, worker_group, scheduler or None  # type: ignore[return-value]


def _ip(task: Any) -> str | None:
    for attachment in task.get("attachments", []):
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    return None


def _parse(task: Any) -> Task | None:
    parsed = _parse_group(task.get("group", ""))
    if parsed is None:
        return None
    component, worker_group, scheduler = parsed
    return Task(
        arn=task["taskArn"],
        component=component,
        last_status=task.get("lastStatus", ""),
        desired_status=task.get("desiredStatus", ""),
        task_definition_arn=task.get("taskDefinitionArn", ""),
        ip=_ip(task),
        scheduler_task_id=scheduler,
        started_at=task.get("startedAt"),
        stopped_at=task.get("stoppedAt"),
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason"),
        capacity_provider=task.get("capacityProviderName"),
        exit_code=next(
            (c["exitCode"] for c in task.get("containers", []) if c.get("exitCode") is not None),
            None,
        ),
        group=worker_group,
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def started_by(aws: Aws, cluster_arn: str, uid: str, stopped: bool = True) -> list[str]:
    """ARNs of the tasks `uid` started that ECS still lists: desired status RUNNING, and
    STOPPED too (those for an hour or so) unless `stopped` is False."""
    arns: list[str] = []
    paginator = aws.ecs.get_paginator("list_tasks")
    desired_status: Literal["RUNNING", "STOPPED"]
    for desired_status in ("RUNNING", "STOPPED") if stopped else ("RUNNING",):
        for page in paginator.paginate(
            cluster=cluster_arn, startedBy=uid, desiredStatus=desired_status
        ):
            arns.extend(page["taskArns"])
    return arns


def describe(aws: Aws, cluster_arn: str, arns: Sequence[str]) -> Iterator[Any]:
    """The tasks as DescribeTasks answers, 100 ARNs a call, each ARN once."""
    for chunk in _chunks(list(dict.fromkeys(arns)), DESCRIBE_BATCH):
        yield from aws.ecs.describe_tasks(cluster=cluster_arn, tasks=list(chunk))["tasks"]


def observe(aws: Aws, target: Target, cluster_arn: str) -> list[Task]:
    """Every task this owner started that ECS still reports, live ones first."""
    arns = started_by(aws, cluster_arn, target.owner.uid)
    return sorted(_describe(aws, cluster_arn, arns), key=lambda t: (not t.live, t.arn))


def observe_known(
    aws: Aws, target: Target, cluster_arn: str, known: Sequence[str], listed: bool = True
) -> list[Task]:
    """The owner's live tasks (ListTasks lists desired status RUNNING by default) and those
    the last step knew, which may have stopped since: one ListTasks per 100 live tasks and
    one DescribeTasks per 100 in all, instead of listing the stopped ones too. `listed`
    False: `known` are all the owner's tasks (only this process starts them), so only
    DescribeTasks."""
    arns = started_by(aws, cluster_arn, target.owner.uid, stopped=False) if listed else []
    return _describe(aws, cluster_arn, [*arns, *known])


def _describe(aws: Aws, cluster_arn: str, arns: Sequence[str]) -> list[Task]:
    return [task for raw in describe(aws, cluster_arn, arns) if (task := _parse(raw)) is not None]


@dataclass(frozen=True)
class RunResult:
    started: list[str]
    failures: list[str]


def run(
    aws: Aws,
    target: Target,
    cluster_arn: str,
    task_definition_arn: str,
    component: Component,
    count: int,
    network: Network,
    security_groups: Sequence[str],
    scheduler: Task | None = None,
    spot: bool = False,
    group: str = "",
) -> RunResult:
    """Start `count` tasks in batches of at most RUN_BATCH; report, not raise, failures."""
    spec = target.spec
    params: dict[str, Any] = {
        "cluster": cluster_arn,
        "taskDefinition": task_definition_arn,
        "startedBy": target.owner.uid,
        "group": _group(component, scheduler.id if scheduler else None, group),
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(network.subnets),
                "securityGroups": list(security_groups),
                "assignPublicIp": "ENABLED" if network.assign_public_ip else "DISABLED",
            }
        },
        "tags": tags.as_ecs(
            {
                **tags.ownership(target.owner, spec.tags),
                **({tags.WORKER_GROUP: group} if group else {}),
            }
        ),
        "propagateTags": "TASK_DEFINITION",
    }
    if spot:
        params["capacityProviderStrategy"] = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    else:
        params["launchType"] = spec.launch_type.value
    if spec.platform_version and spec.launch_type.value == "FARGATE":
        params["platformVersion"] = spec.platform_version
    if scheduler is not None:
        address = comm_address(spec, scheduler.ip)
        params["overrides"] = {
            "containerOverrides": [
                {
                    "name": CONTAINER["worker"],
                    "environment": [{"name": SCHEDULER_ADDRESS_ENV, "value": address}],
                }
            ]
        }
    started: list[str] = []
    failures: list[str] = []
    remaining = count
    while remaining > 0:
        batch = min(RUN_BATCH, remaining)
        reply = aws.ecs.run_task(**params, count=batch)
        started.extend(t["taskArn"] for t in reply.get("tasks", []))
        failures.extend(
            f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in reply.get("failures", [])
        )
        remaining -= batch
        if reply.get("failures"):
            break  # capacity is short; the next reconcile tries again
    return RunResult(started, failures)


def stop(aws: Aws, cluster_arn: str, task_arns: Sequence[str], reason: str) -> None:
    for arn in task_arns:
        # InvalidParameterException: the task is already gone.
        with contextlib.suppress(aws.ecs.exceptions.InvalidParameterException):
            aws.ecs.stop_task(cluster=cluster_arn, task=arn, reason=reason[:255])


def wait_stopped(aws: Aws, cluster_arn: str, task_arns: Sequence[str]) -> None:
    for chunk in _chunks(list(task_arns), DESCRIBE_BATCH):
        aws.ecs.get_waiter("tasks_stopped").wait(
            cluster=cluster_arn, tasks=list(chunk), WaiterConfig={"Delay": 2, "MaxAttempts": 90}
        )
