"""The local AWS rejects what AWS rejects, where moto alone would accept it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dask_aws.local import LocalAws
from tests.local.helpers import Env, make_env, register, run, unique, wait_status

CONTAINER = [{"name": "main", "image": "python", "command": ["sleep", "60"]}]


@pytest.fixture
def env(local_aws_simulated: LocalAws) -> Env:
    return make_env(local_aws_simulated)


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    details: dict[str, Any] = exc.value.response["Error"]
    return str(details["Code"]), str(details.get("Message", ""))


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [("256", "30720"), ("garbage", "512"), ("512", "512"), ("1024", "1536"), ("8192", "20000")],
)
def test_fargate_sizes_outside_the_table_are_refused(env: Env, cpu: str, memory: str) -> None:
    with pytest.raises(ClientError) as exc:
        register(env, CONTAINER, cpu=cpu, memory=memory)
    code, message = error(exc)
    assert code == "ClientException"
    assert message.startswith("No Fargate configuration exists for given values")


@pytest.mark.parametrize(("cpu", "memory"), [("256", "512"), ("1 vCPU", "2 GB"), ("4096", "30720")])
def test_fargate_sizes_in_the_table_are_accepted(env: Env, cpu: str, memory: str) -> None:
    register(env, CONTAINER, cpu=cpu, memory=memory)


def test_fargate_needs_awsvpc_task_size_and_roles(env: Env) -> None:
    with pytest.raises(ClientError) as exc:
        register(env, CONTAINER, networkMode="bridge")
    assert error(exc)[0] == "ClientException"
    with pytest.raises(ClientError) as exc:
        env.ecs.register_task_definition(
            family=unique("f"),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            containerDefinitions=[{**CONTAINER[0], "memory": 512}],
        )
    assert "'cpu' be defined at the task level" in error(exc)[1]
    secret = [{**CONTAINER[0], "secrets": [{"name": "S", "valueFrom": "arn:aws:ssm:x"}]}]
    with pytest.raises(ClientError) as exc:
        register(env, secret, executionRoleArn="")
    assert "executionRoleArn" in error(exc)[1]


def test_task_level_memory_only_can_be_run(env: Env) -> None:
    # moto alone fails RunTask with a 500 here.
    task = run(env, register(env, CONTAINER))[0]
    wait_status(env, task["taskArn"], "RUNNING")


def test_task_without_security_groups_joins_the_vpcs_default_group(env: Env) -> None:
    # AWS accepts awsvpc subnets without groups; moto alone answers HTTP 500 (KeyError).
    # (A public IP: without one a task in the default VPC's public subnets cannot pull.)
    subnets_only = {"awsvpcConfiguration": {"subnets": [env.subnet], "assignPublicIp": "ENABLED"}}
    task = run(env, register(env, CONTAINER), networkConfiguration=subnets_only)[0]
    task = wait_status(env, task["taskArn"], "RUNNING")
    eni = next(
        d["value"] for d in task["attachments"][0]["details"] if d["name"] == "networkInterfaceId"
    )
    groups = env.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    vpc = env.ec2.describe_subnets(SubnetIds=[env.subnet])["Subnets"][0]["VpcId"]
    default = env.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    assert [g["GroupId"] for g in groups["Groups"]] == [default]


def test_run_task_count_and_started_by_limits(env: Env) -> None:
    td = register(env, CONTAINER)
    with pytest.raises(ClientError) as exc:
        run(env, td, count=11)
    assert error(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        run(env, td, startedBy="x" * 37)
    assert error(exc)[0] == "InvalidParameterException"
    assert len(run(env, td, count=10, startedBy="u" * 36)) == 10


def test_run_task_checks_definition_network_and_capacity_providers(env: Env) -> None:
    td = register(env, CONTAINER)
    bad_group = {"awsvpcConfiguration": {"subnets": [env.subnet], "securityGroups": ["sg-nope"]}}
    with pytest.raises(ClientError) as exc:
        run(env, td, networkConfiguration=bad_group)
    assert error(exc)[0] == "InvalidParameterException"
    bare = unique("bare")
    env.ecs.create_cluster(clusterName=bare)
    with pytest.raises(ClientError) as exc:
        run(env, td, cluster=bare, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}])
    assert "not associated with the cluster" in error(exc)[1]
    env.ecs.deregister_task_definition(taskDefinition=td)
    with pytest.raises(ClientError) as exc:
        run(env, td)
    assert error(exc) == ("ClientException", "TaskDefinition is inactive")


def test_describe_tasks_limit_and_missing(env: Env) -> None:
    td = register(env, CONTAINER)
    arns = [t["taskArn"] for t in run(env, td, count=2)]
    with pytest.raises(ClientError) as exc:
        env.ecs.describe_tasks(cluster=env.cluster, tasks=arns * 51)
    assert error(exc) == ("InvalidParameterException", "taskIds can have at most 100 items.")
    other = unique("other")
    env.ecs.create_cluster(clusterName=other)
    response = env.ecs.describe_tasks(cluster=other, tasks=arns[:1])
    assert response["tasks"] == []
    assert response["failures"] == [{"arn": arns[0], "reason": "MISSING"}]
    by_id = env.ecs.describe_tasks(cluster=env.cluster, tasks=[arns[1].rsplit("/", 1)[-1]])
    assert [t["taskArn"] for t in by_id["tasks"]] == [arns[1]]


def test_stop_unknown_task_is_a_client_error(env: Env) -> None:
    with pytest.raises(ClientError) as exc:
        env.ecs.stop_task(cluster=env.cluster, task="0123456789abcdef")
    assert error(exc) == ("InvalidParameterException", "The referenced task was not found.")


def test_security_group_in_use_and_cluster_with_tasks_cannot_be_deleted(env: Env) -> None:
    td = register(env, CONTAINER)
    arn = run(env, td)[0]["taskArn"]
    wait_status(env, arn, "RUNNING")
    with pytest.raises(ClientError) as exc:
        env.ec2.delete_security_group(GroupId=env.security_group)
    assert error(exc)[0] == "DependencyViolation"
    with pytest.raises(ClientError) as exc:
        env.ecs.delete_cluster(cluster=env.cluster)
    assert error(exc)[0] == "ClusterContainsTasksException"
    env.ecs.stop_task(cluster=env.cluster, task=arn)
    wait_status(env, arn, "STOPPED")
    env.ec2.delete_security_group(GroupId=env.security_group)
    env.ecs.delete_cluster(cluster=env.cluster)


def test_managed_execution_policy_can_be_attached(env: Env) -> None:
    iam = env.session.client("iam")
    role = unique("exec")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(
        RoleName=role,
        PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    )


def test_list_tasks_defaults_to_running_and_pages(env: Env) -> None:
    td = register(env, CONTAINER)
    arns = [t["taskArn"] for _ in range(3) for t in run(env, td, count=10)]
    env.ecs.stop_task(cluster=env.cluster, task=arns[0])
    listed = env.ecs.list_tasks(cluster=env.cluster)
    assert len(listed["taskArns"]) == 29 and "nextToken" not in listed
    assert env.ecs.list_tasks(cluster=env.cluster, desiredStatus="STOPPED")["taskArns"] == arns[:1]
    first = env.ecs.list_tasks(cluster=env.cluster, maxResults=20)
    second = env.ecs.list_tasks(cluster=env.cluster, maxResults=20, nextToken=first["nextToken"])
    assert len(first["taskArns"]) == 20 and len(second["taskArns"]) == 9
    assert "nextToken" not in second
    paginator = env.ecs.get_paginator("list_tasks")
    pages = list(paginator.paginate(cluster=env.cluster, PaginationConfig={"PageSize": 7}))
    assert sum(len(p["taskArns"]) for p in pages) == 29
    # Another cluster whose name contains this one's lists nothing of it.
    env.ecs.create_cluster(clusterName=env.cluster + "x")
    assert env.ecs.list_tasks(cluster=env.cluster + "x")["taskArns"] == []


def test_client_token_and_tags(env: Env) -> None:
    td = env.ecs.register_task_definition(
        family=unique("tagged"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=CONTAINER,
        tags=[{"key": "from", "value": "td"}, {"key": "both", "value": "td"}],
    )["taskDefinition"]["taskDefinitionArn"]
    token = unique("token")
    request: dict[str, Any] = {
        "clientToken": token,
        "propagateTags": "TASK_DEFINITION",
        "enableECSManagedTags": True,
        "tags": [{"key": "both", "value": "run"}],
    }
    first = run(env, td, **request)
    again = run(env, td, **request)
    assert [t["taskArn"] for t in again] == [t["taskArn"] for t in first]
    assert len(env.ecs.list_tasks(cluster=env.cluster)["taskArns"]) == 1
    with pytest.raises(ClientError) as exc:
        run(env, td, count=2, clientToken=token)
    assert error(exc)[0] == "ConflictException"
    described = env.ecs.describe_tasks(
        cluster=env.cluster, tasks=[first[0]["taskArn"]], include=["TAGS"]
    )["tasks"][0]
    assert {t["key"]: t["value"] for t in described["tags"]} == {
        "from": "td",
        "both": "run",
        "aws:ecs:clusterName": env.cluster,
    }


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("ghcr.io/dask/dask:latest; curl x | sh", "invalid characters"),
        ("ghcr.io/dask/dåsk:latest", "invalid characters"),
        ("r/" + "i" * 260, "255 characters"),
    ],
)
def test_images_ecs_refuses_are_refused(env: Env, image: str, words: str) -> None:
    with pytest.raises(ClientError) as exc:
        register(env, [{**CONTAINER[0], "image": image}])
    assert error(exc)[0] == "ClientException" and words in error(exc)[1]
    digest = "ghcr.io/dask/dask@sha256:" + "a" * 64
    assert register(env, [{**CONTAINER[0], "image": digest}])
