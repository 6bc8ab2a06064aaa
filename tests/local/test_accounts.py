"""Two accounts in the local AWS: a role in account B assumed with account A's credentials.

moto files each request under the account that owns its access key, and AssumeRole of a
role ARN in another account hands out keys of that account; the local STS adds what AWS
checks across accounts (the role exists, its trust policy allows the caller, the external
id matches). Account A is the default account (testing/testing credentials).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dask_aws.local import LocalAws
from dask_aws.local.api import DEFAULT_ACCOUNT
from tests.fixtures.local_aws import LocalBotoSession, boto_session
from tests.local.helpers import (
    ECS_TASKS_TRUST,
    Env,
    printed,
    probe_container,
    register,
    run,
    unique,
    wait_status,
)

A = DEFAULT_ACCOUNT
B = "222222222222"
C = "333333333333"
DENIED = "is not authorized to perform: sts:AssumeRole on resource: "


def assume(local: LocalAws, role_arn: str, external_id: str | None = None) -> boto3.Session:
    """A session of `role_arn`, assumed with account A's credentials."""
    request: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "tenant"}
    if external_id is not None:
        request["ExternalId"] = external_id
    keys = boto_session(local).client("sts").assume_role(**request)["Credentials"]
    return LocalBotoSession(
        local.endpoint_url,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=local.region,
    )


def refusal(local: LocalAws, role_arn: str, external_id: str | None = None) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        assume(local, role_arn, external_id)
    error: dict[str, Any] = dict(caught.value.response["Error"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return error


def test_role_in_another_account_is_assumed_with_the_first_accounts_credentials(
    local_aws_simulated: LocalAws,
) -> None:
    local = local_aws_simulated
    role = unique("tenant")
    arn = local.create_account_role(B, role, trusted_account=A)
    assert arn == f"arn:aws:iam::{B}:role/{role}"
    who = assume(local, arn).client("sts").get_caller_identity()
    assert who["Account"] == B
    assert who["Arn"] == f"arn:aws:sts::{B}:assumed-role/{role}/tenant"
    # A's own credentials still act in A.
    assert boto_session(local).client("sts").get_caller_identity()["Account"] == A


def test_account_admin_credentials_act_in_that_account(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    admin = local.account_credentials(B)
    assert admin == local.account_credentials(B)  # the same key each time
    kwargs: Any = local.account_client_kwargs(B)
    sts = boto3.client("sts", **kwargs)
    assert sts.get_caller_identity()["Account"] == B
    assert local.account_env(B)["AWS_ACCESS_KEY_ID"] == admin["accessKeyId"]


def test_external_id_condition(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant-ext"), trusted_account=A, external_id="e-1")
    assert assume(local, arn, "e-1").client("sts").get_caller_identity()["Account"] == B
    for wrong in ("e-2", None):
        error = refusal(local, arn, wrong)
        assert error["Code"] == "AccessDenied"
        assert error["Message"] == f"User: arn:aws:sts::{A}:user/moto {DENIED}{arn}"


def test_roles_that_do_not_trust_the_caller_are_refused(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    other = local.create_account_role(B, unique("for-c"), trusted_account=C)
    missing = f"arn:aws:iam::{B}:role/{unique('nobody')}"
    never_used = f"arn:aws:iam::444444444444:role/{unique('x')}"
    for arn in (other, missing, never_used):
        error = refusal(local, arn)
        assert error["Code"] == "AccessDenied" and error["Message"].endswith(DENIED + arn)
    # C may assume the role that trusts C.
    keys = local.account_credentials(C)
    sts = boto3.client(
        "sts",
        endpoint_url=local.endpoint_url,
        region_name=local.region,
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=keys["secretAccessKey"],
    )
    assumed = sts.assume_role(RoleArn=other, RoleSessionName="from-c")["AssumedRoleUser"]
    assert assumed["Arn"].startswith(f"arn:aws:sts::{B}:assumed-role/")


def test_resources_made_as_the_role_live_in_its_account(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    b = assume(local, local.create_account_role(B, unique("tenant"), trusted_account=A))
    a = boto_session(local)
    name = unique("in-b")
    cluster = b.client("ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"]
    family = b.client("ecs").register_task_definition(
        family=name,
        containerDefinitions=[{"name": "c", "image": "i", "memoryReservation": 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    role = b.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]
    group = b.client("ec2").create_security_group(GroupName=name, Description="d")["GroupId"]
    b.client("logs").create_log_group(logGroupName=f"/b/{name}")
    secret = b.client("secretsmanager").create_secret(Name=name, SecretString="s")["ARN"]
    for arn in (cluster, family, role["Arn"], secret):
        assert f":{B}:" in arn, arn

    assert a.client("ecs").describe_clusters(clusters=[name])["clusters"] == []
    assert b.client("ecs").describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"
    assert (
        family not in a.client("ecs").list_task_definitions(familyPrefix=name)["taskDefinitionArns"]
    )
    with pytest.raises(ClientError, match="NoSuchEntity"):
        a.client("iam").get_role(RoleName=name)
    with pytest.raises(ClientError, match=r"InvalidGroup\.NotFound"):
        a.client("ec2").describe_security_groups(GroupIds=[group])
    assert a.client("logs").describe_log_groups(logGroupNamePrefix=f"/b/{name}")["logGroups"] == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        a.client("secretsmanager").describe_secret(SecretId=name)
    # And the other way round: A's resources are not B's.
    a.client("ecs").create_cluster(clusterName=f"{name}-a")
    assert b.client("ecs").describe_clusters(clusters=[f"{name}-a"])["clusters"] == []


# In the task: who its credentials are, and the address it was given.
PROBE = """
import json, os, urllib.request
import boto3
container = json.load(urllib.request.urlopen(os.environ["ECS_CONTAINER_METADATA_URI_V4"]))
print(json.dumps({
    "who": boto3.client("sts").get_caller_identity()["Arn"],
    "ip": container["Networks"][0]["IPv4Addresses"][0],
}))
"""


def env_of(session: boto3.Session) -> Env:
    ecs, ec2 = session.client("ecs"), session.client("ec2")
    cluster = unique("cluster-b")
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.create_security_group(GroupName=unique("sg-b"), Description="test")["GroupId"]
    return Env(session, ecs, ec2, session.client("logs"), cluster, subnet, group)


@pytest.mark.slow
def test_task_in_the_other_account_runs_as_its_role_and_logs_there(local_aws: LocalAws) -> None:
    local = local_aws
    env = env_of(assume(local, local.create_account_role(B, unique("tenant"), trusted_account=A)))
    group = f"/accounts/{env.cluster}"
    env.logs.create_log_group(logGroupName=group)
    task_role = unique("task-role-b")
    role_arn = env.session.client("iam").create_role(
        RoleName=task_role, AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST)
    )["Role"]["Arn"]
    assert role_arn.startswith(f"arn:aws:iam::{B}:")
    definition = register(
        env,
        [probe_container(PROBE, group)],
        taskRoleArn=role_arn,
        executionRoleArn=f"arn:aws:iam::{B}:role/ecsTaskExecutionRole",
    )
    task = run(env, definition)[0]
    arn = task["taskArn"]
    assert arn.startswith(f"arn:aws:ecs:{local.region}:{B}:task/")
    task_id = arn.rsplit("/", 1)[1]
    seen = printed(env, group, arn, timeout=30)
    assert seen["who"] == f"arn:aws:sts::{B}:assumed-role/{task_role}/{task_id}"
    stopped = wait_status(env, arn, "STOPPED")
    assert stopped["containers"][0]["exitCode"] == 0
    details = {d["name"]: d["value"] for d in stopped["attachments"][0]["details"]}
    assert seen["ip"] == details["privateIPv4Address"]
    assert seen["ip"].startswith("127.")

    # Nothing of it in account A: not the task, not its cluster, not its logs.
    a = boto_session(local)
    with pytest.raises(ClientError, match="ClusterNotFoundException"):
        a.client("ecs").describe_tasks(cluster=env.cluster, tasks=[arn])
    assert not any(env.cluster in c for c in a.client("ecs").list_clusters()["clusterArns"])
    assert a.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
