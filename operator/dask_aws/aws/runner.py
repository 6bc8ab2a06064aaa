"""A DaskAwsJob's runner: its ECS task definition (one family per job) and its tasks.

Each attempt is one RunTask with the job's uid as startedBy, the attempt number in the
task group (dask-aws-job:runner:<n>) and a clientToken of uid and attempt, so a retried
call after a crash cannot start the same attempt twice, and the next step finds every
attempt again by listing what the job started.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dask_aws.aws import tags
from dask_aws.aws import task_definitions as definitions
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found
from dask_aws.certs import CA, CLIENT_CERT, CLIENT_KEY
from dask_aws.errors import PermanentError, TransientError
from dask_aws.jobs.plan import LOG_STREAM_PREFIX, RUNNER_CONTAINER, Attempt
from dask_aws.jobs.spec import RunnerSpec
from dask_aws.names import Owner

GROUP_PREFIX = "dask-aws-job:runner:"


@dataclass(frozen=True)
class Placement:
    """Where and as whom the runner runs: next to its cluster, in the cluster's network."""

    cluster_arn: str
    scheduler_address: str
    image: str
    launch_type: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: bool
    task_role_arn: str
    execution_role_arn: str
    log_group: str
    region: str
    tls_secret_arn: str | None = None  # the cluster's: its client certificate
    platform_version: str | None = None


def family(owner: Owner) -> str:
    return owner.short(255, tail="-runner")


def _secrets(runner: RunnerSpec, place: Placement) -> dict[str, str]:
    secrets = dict(runner.secrets)
    if place.tls_secret_arn:
        # `<arn>:<json key>::`: the current version of one key of the cluster's secret.
        tls = definitions.TLS_ENV
        secrets[f"{tls}CA_FILE"] = f"{place.tls_secret_arn}:{CA}::"
        secrets[f"{tls}CLIENT__CERT"] = f"{place.tls_secret_arn}:{CLIENT_CERT}::"
        secrets[f"{tls}CLIENT__KEY"] = f"{place.tls_secret_arn}:{CLIENT_KEY}::"
    return secrets


def desired(owner: Owner, runner: RunnerSpec, place: Placement) -> dict[str, Any]:
    env = {**runner.env, definitions.SCHEDULER_ADDRESS_ENV: place.scheduler_address}
    if place.tls_secret_arn:
        env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
    container: dict[str, Any] = {
        "name": RUNNER_CONTAINER,
        "image": runner.image or place.image,
        "essential": True,
        "command": [*runner.command, *runner.args],
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "secrets": [
            {"name": k, "valueFrom": v} for k, v in sorted(_secrets(runner, place).items())
        ],
        "memoryReservation": runner.memory,
        "stopTimeout": definitions.STOP_TIMEOUT,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": place.log_group,
                "awslogs-region": place.region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
    }
    return {
        "family": family(owner),
        "taskRoleArn": place.task_role_arn,
        "executionRoleArn": place.execution_role_arn,
        "networkMode": "awsvpc",
        "requiresCompatibilities": [place.launch_type],
        "cpu": str(runner.cpu),
        "memory": str(runner.memory),
        "containerDefinitions": [container],
    }


def _hash(registration: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(registration, sort_keys=True).encode()).hexdigest()[:32]


def ensure_definition(
    aws: Aws, owner: Owner, registration: dict[str, Any], user_tags: Mapping[str, str]
) -> str:
    """The ARN of an ACTIVE revision registered from exactly `registration`: the existing
    one (one read) or a new one, so a retried attempt reuses the revision of its first try."""
    try:
        reply = aws.ecs.describe_task_definition(taskDefinition=family(owner), include=["TAGS"])
        have = tags.from_list(reply.get("tags"))
        current = reply["taskDefinition"]
        if current.get("status") == "ACTIVE" and tags.is_owned_by(have, owner):
            if have.get(tags.SPEC_HASH) == _hash(registration):
                return str(current["taskDefinitionArn"])
        elif current.get("status") == "ACTIVE":
            raise PermanentError(
                "NameConflict", f"task definition family {family(owner)} is not ours"
            )
    except aws.ecs.exceptions.ClientException:
        pass  # no ACTIVE revision yet
    owned = {**tags.ownership(owner, user_tags), tags.SPEC_HASH: _hash(registration)}
    return definitions.register(aws, registration, owned).id


def delete_definition(aws: Aws, owner: Owner) -> None:
    try:
        reply = aws.ecs.describe_task_definition(taskDefinition=family(owner), include=["TAGS"])
    except aws.ecs.exceptions.ClientException:
        return
    if tags.is_owned_by(tags.from_list(reply.get("tags")), owner):
        arn = reply["taskDefinition"]["taskDefinitionArn"]
        definitions.delete(aws, Found(id=arn, ours=True))


def run(
    aws: Aws,
    owner: Owner,
    attempt: int,
    definition_arn: str,
    place: Placement,
    user_tags: Mapping[str, str],
) -> str:
    params: dict[str, Any] = {
        "cluster": place.cluster_arn,
        "taskDefinition": definition_arn,
        "startedBy": owner.uid,
        "group": f"{GROUP_PREFIX}{attempt}",
        "clientToken": f"{owner.uid}-{attempt}",
        "count": 1,
        "launchType": place.launch_type,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(place.subnets),
                "securityGroups": list(place.security_groups),
                "assignPublicIp": "ENABLED" if place.assign_public_ip else "DISABLED",
            }
        },
        "tags": tags.as_ecs(tags.ownership(owner, user_tags)),
        "propagateTags": "TASK_DEFINITION",
    }
    if place.platform_version and place.launch_type == "FARGATE":
        params["platformVersion"] = place.platform_version
    reply = aws.ecs.run_task(**params)
    started = [t["taskArn"] for t in reply.get("tasks", [])]
    if not started:
        failures = "; ".join(
            f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in reply.get("failures", [])
        )
        raise TransientError("RunnerNotStarted", f"ECS did not start the runner: {failures}")
    return str(started[0])


def _attempt(task: Any) -> Attempt | None:
    group = str(task.get("group", ""))
    if not group.startswith(GROUP_PREFIX) or not group[len(GROUP_PREFIX) :].isdigit():
        return None
    container: Any = next(
        (c for c in task.get("containers", []) if c.get("name") == RUNNER_CONTAINER), {}
    )
    live = task.get("desiredStatus") == "RUNNING" or task.get("lastStatus") != "STOPPED"
    return Attempt(
        number=int(group[len(GROUP_PREFIX) :]),
        arn=task["taskArn"],
        live=live,
        exit_code=container.get("exitCode"),
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason"),
        started_at=task.get("startedAt") or task.get("createdAt"),
        stopped_at=task.get("stoppedAt") if not live else None,
    )


def observe(
    aws: Aws, owner: Owner, cluster_arn: str, known: Sequence[str] = ()
) -> tuple[Attempt, ...]:
    """Every runner task of the job ECS still reports (stopped ones for an hour or so),
    and the `known` ones by ARN: ListTasks may not list a task RunTask just started, and
    taking that for "no attempt runs" would start a second one beside it."""
    arns = [*known, *ecs_tasks.started_by(aws, cluster_arn, owner.uid)]
    found = [a for raw in ecs_tasks.describe(aws, cluster_arn, arns) if (a := _attempt(raw))]
    return tuple(sorted(found, key=lambda a: a.number))


def stop(aws: Aws, cluster_arn: str, arns: Sequence[str], reason: str) -> None:
    ecs_tasks.stop(aws, cluster_arn, arns, reason)
