"""Plain-boto3 helpers shared by the local AWS tests."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from dask_aws.local import LocalAws
from tests.fixtures.local_aws import boto_session
from tests.fixtures.polling import wait_for

EXECUTION_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
# The trust policy of a task role: ECS tasks may assume it.
ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass
class Env:
    session: boto3.Session
    ecs: Any
    ec2: Any
    logs: Any
    cluster: str
    subnet: str
    security_group: str

    def network(self) -> dict[str, Any]:
        return {
            "awsvpcConfiguration": {
                "subnets": [self.subnet],
                "securityGroups": [self.security_group],
                "assignPublicIp": "ENABLED",
            }
        }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_env(local: LocalAws, **client_kwargs: Any) -> Env:
    session = boto_session(local)
    ecs = session.client("ecs", **client_kwargs)
    ec2 = session.client("ec2")
    cluster = unique("cluster")
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.create_security_group(GroupName=unique("sg"), Description="test")["GroupId"]
    return Env(session, ecs, ec2, session.client("logs"), cluster, subnet, group)


def register(env: Env, containers: list[dict[str, Any]], **kwargs: Any) -> str:
    params: dict[str, Any] = {
        "family": unique("family"),
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": EXECUTION_ROLE,
        "containerDefinitions": containers,
    }
    params.update(kwargs)
    arn: str = env.ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"]
    return arn


def run(env: Env, task_definition: str, count: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "cluster": env.cluster,
        "taskDefinition": task_definition,
        "count": count,
        "launchType": "FARGATE",
        "networkConfiguration": env.network(),
    }
    params.update(kwargs)
    if "capacityProviderStrategy" in kwargs:
        params.pop("launchType")
    response = env.ecs.run_task(**params)
    tasks: list[dict[str, Any]] = response["tasks"]
    return tasks


def describe(env: Env, arns: list[str]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = env.ecs.describe_tasks(cluster=env.cluster, tasks=arns)["tasks"]
    return tasks


def wait_status(env: Env, arn: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    """The task, described once its lastStatus is `status`."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        last.clear()
        last.update(describe(env, [arn])[0])
        return dict(last) if last["lastStatus"] == status else None

    return wait_for(check, timeout, lambda: f"{arn} {status}; last: {last}", interval=0.1)


def task_ip(task: dict[str, Any]) -> str:
    for attachment in task["attachments"]:
        for detail in attachment["details"]:
            if detail["name"] == "privateIPv4Address":
                return str(detail["value"])
    raise AssertionError(f"no address in {task}")


def probe_container(code: str, log_group: str) -> dict[str, Any]:
    """A container running Python `code`, its output in `log_group` (stream prefix p)."""
    return {
        "name": "main",
        "image": "python:3.11",
        "command": [sys.executable, "-c", code],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-stream-prefix": "p"},
        },
    }


def printed(env: Env, group: str, arn: str, timeout: float = 20.0) -> dict[str, Any]:
    """The first JSON line a probe_container of task `arn` logged."""
    stream = f"p/main/{arn.rsplit('/', 1)[-1]}"

    def check() -> dict[str, Any] | None:
        try:
            events = env.logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
        except env.logs.exceptions.ResourceNotFoundException:
            return None
        lines = [e["message"] for e in events if e["message"].startswith("{")]
        return json.loads(lines[0]) if lines else None

    return wait_for(check, timeout, f"the probe's output in {group}/{stream}", interval=0.2)
