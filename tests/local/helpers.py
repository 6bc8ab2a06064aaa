"""Plain-boto3 helpers shared by the local AWS tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from dask_aws.local import LocalAws
from tests.fixtures.local_aws import boto_session
from tests.fixtures.polling import wait_for

EXECUTION_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"


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
