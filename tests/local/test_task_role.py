"""What a task's process sees of the ECS agent: task-role credentials and task metadata."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from typing import Any

import pytest

from dask_aws.local import LocalAws
from dask_aws.local.credentials import trusts_ecs_tasks
from dask_aws.local.specs import base_env
from tests.fixtures.local_aws import LocalBotoSession
from tests.fixtures.polling import wait_for
from tests.local.helpers import (
    ECS_TASKS_TRUST,
    make_env,
    printed,
    probe_container,
    register,
    run,
    unique,
    wait_status,
)

# boto3 in the container: who it is, what the metadata endpoint says, and whether the
# credentials endpoint answers a request without the task's authorization token.
PROBE = """
import json, os, urllib.error, urllib.request
import boto3, botocore.exceptions
meta = os.environ["ECS_CONTAINER_METADATA_URI_V4"]
task = json.load(urllib.request.urlopen(meta + "/task", timeout=5))
container = json.load(urllib.request.urlopen(meta, timeout=5))
try:
    who = boto3.client("sts").get_caller_identity()["Arn"]
except botocore.exceptions.NoCredentialsError as exc:
    who = type(exc).__name__
unauthorized = None
if "AWS_CONTAINER_CREDENTIALS_FULL_URI" in os.environ:
    try:
        urllib.request.urlopen(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], timeout=5)
    except urllib.error.HTTPError as exc:
        unauthorized = exc.code
print(json.dumps({
    "who": who, "unauthorized": unauthorized, "cluster": task["Cluster"],
    "task": task["TaskARN"], "containers": [c["Name"] for c in task["Containers"]],
    "ip": container["Networks"][0]["IPv4Addresses"][0],
    "label": container["Labels"]["com.amazonaws.ecs.task-arn"],
}))
"""


@pytest.mark.slow
def test_task_role_credentials_and_metadata(local_aws: LocalAws) -> None:
    env = make_env(local_aws)
    group = f"/role/{env.cluster}"
    env.logs.create_log_group(logGroupName=group)
    role = unique("task-role")
    iam = env.session.client("iam")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST))[
        "Role"
    ]["Arn"]
    container = probe_container(PROBE, group)
    with_role = register(env, [container], taskRoleArn=role_arn)
    without_role = register(env, [container])
    arn = run(env, with_role)[0]["taskArn"]
    bare = run(env, without_role)[0]["taskArn"]

    seen = printed(env, group, arn)
    assert seen["who"] == f"arn:aws:sts::123456789012:assumed-role/{role}/{arn.rsplit('/', 1)[1]}"
    assert seen["unauthorized"] == 401
    assert seen["task"] == seen["label"] == arn
    assert seen["cluster"].endswith(f":cluster/{env.cluster}")
    assert seen["containers"] == ["main"]
    stopped = wait_status(env, arn, "STOPPED")
    details = {d["name"]: d["value"] for d in stopped["attachments"][0]["details"]}
    assert seen["ip"] == details["privateIPv4Address"]
    assert stopped["containers"][0]["exitCode"] == 0

    seen = printed(env, group, bare)
    assert seen["who"] == "NoCredentialsError"  # not the host's identity
    assert seen["task"] == bare


# The task role may only say who it is: anything else from the task is denied.
ENFORCED_PROBE = """
import boto3, botocore.exceptions
print("who", boto3.client("sts").get_caller_identity()["Arn"])
try:
    boto3.client("ecs").list_clusters()
    print("ecs allowed")
except botocore.exceptions.ClientError as exc:
    print("ecs denied", exc.response["Error"]["Code"])
"""


def allow(action: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.slow
def test_iam_enforcement_applies_to_the_task_role() -> None:
    with LocalAws(stop_timeout=2.0) as local:
        env = make_env(local)
        iam = env.session.client("iam")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=allow("*"))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        role = unique("narrow")
        role_arn = iam.create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST)
        )["Role"]["Arn"]
        policy = allow("sts:GetCallerIdentity")
        iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=policy)
        group = "/enforced"
        env.logs.create_log_group(logGroupName=group)
        td = register(env, [probe_container(ENFORCED_PROBE, group)], taskRoleArn=role_arn)
        request = urllib.request.Request(
            f"{local.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
        session = LocalBotoSession(
            local.endpoint_url,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name="us-east-1",
        )
        env = dataclasses.replace(
            env, session=session, ecs=session.client("ecs"), logs=session.client("logs")
        )
        arn = run(env, td)[0]["taskArn"]
        stream = f"p/main/{arn.rsplit('/', 1)[1]}"

        def lines() -> list[str] | None:
            try:
                events = env.logs.get_log_events(logGroupName=group, logStreamName=stream)
            except env.logs.exceptions.ResourceNotFoundException:
                return None
            messages = [e["message"] for e in events["events"]]
            return messages if any(m.startswith("ecs ") for m in messages) else None

        messages = wait_for(lines, 20, f"the probe's output in {stream}", interval=0.2)
        assert f"who arn:aws:sts::123456789012:assumed-role/{role}/" in messages[0]
        assert messages[1].startswith("ecs denied"), messages


def test_container_env_has_no_host_credentials(tmp_path: Any) -> None:
    host = {
        "HOME": "/home/someone",
        "AWS_ACCESS_KEY_ID": "AKIAHOST",
        "AWS_SECRET_ACCESS_KEY": "host-secret",
        "AWS_SESSION_TOKEN": "host-token",
        "AWS_PROFILE": "host",
    }
    env = base_env("127.1.0.9", "us-east-1", "http://127.0.0.1:1", "FARGATE", str(tmp_path), host)
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
    assert "AWS_PROFILE" not in env
    assert env["AWS_SHARED_CREDENTIALS_FILE"].startswith(str(tmp_path))
    assert env["AWS_CONFIG_FILE"].startswith(str(tmp_path))


def test_trust_policy_must_name_ecs_tasks() -> None:
    assert trusts_ecs_tasks(ECS_TASKS_TRUST)
    assert trusts_ecs_tasks(json.dumps(ECS_TASKS_TRUST))
    ec2 = json.dumps(ECS_TASKS_TRUST).replace("ecs-tasks.amazonaws.com", "ec2.amazonaws.com")
    assert not trusts_ecs_tasks(ec2)
