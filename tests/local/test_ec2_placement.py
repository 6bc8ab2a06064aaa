"""RunTask on the EC2 launch type, placed on a fleet of container instances the test sizes
(`LocalAws.add_container_instances`, local/fleet.py). Simulated: no process needed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dask_aws.local import LocalAws
from tests.local.helpers import Env, make_env, unique, wait_status

GPU = {"type": "GPU", "value": "1"}


@pytest.fixture
def env(local_aws_simulated: LocalAws) -> Env:
    return make_env(local_aws_simulated)


def fleet(env: Env, local: LocalAws) -> tuple[str, str, str]:
    """(cluster, its 2-GPU instance, its CPU instance)."""
    cluster = unique("ec2")
    env.ecs.create_cluster(clusterName=cluster)
    [gpu] = local.add_container_instances(cluster, cpu=8192, memory=32768, gpus=2)
    [cpu] = local.add_container_instances(cluster, cpu=4096, memory=8192)
    return cluster, gpu, cpu


def definition(env: Env, memory: int = 1024, **extra: Any) -> str:
    container = {"name": "main", "image": "python", "memory": memory, "cpu": 256, **extra}
    response = env.ecs.register_task_definition(
        family=unique("ec2"),
        requiresCompatibilities=["EC2"],
        networkMode="bridge",
        containerDefinitions=[container],
    )
    return str(response["taskDefinition"]["taskDefinitionArn"])


def run_ec2(env: Env, cluster: str, td: str, count: int = 1) -> dict[str, Any]:
    response: dict[str, Any] = env.ecs.run_task(
        cluster=cluster, taskDefinition=td, count=count, launchType="EC2"
    )
    return response


def resource(instance: dict[str, Any], name: str, which: str = "remainingResources") -> Any:
    found = next(r for r in instance[which] if r["name"] == name)
    return found.get("stringSetValue") if found["type"] == "STRINGSET" else found["integerValue"]


def instance(env: Env, cluster: str, arn: str) -> dict[str, Any]:
    described: dict[str, Any] = env.ecs.describe_container_instances(
        cluster=cluster, containerInstances=[arn]
    )["containerInstances"][0]
    return described


def test_instances_show_their_resources_as_aws(env: Env, local_aws_simulated: LocalAws) -> None:
    cluster, gpu, cpu = fleet(env, local_aws_simulated)
    described = instance(env, cluster, gpu)
    assert resource(described, "CPU", "registeredResources") == 8192
    assert resource(described, "MEMORY", "registeredResources") == 32768
    ids = resource(described, "GPU", "registeredResources")
    assert len(ids) == 2 and all(i.startswith("GPU-") for i in ids)
    attributes = {a["name"]: a.get("value") for a in described["attributes"]}
    assert attributes["ecs.cpu-architecture"] == "x86_64"
    assert "GPU" not in {r["name"] for r in instance(env, cluster, cpu)["registeredResources"]}


def test_gpu_tasks_land_on_the_gpu_instance_until_its_gpus_are_taken(
    env: Env, local_aws_simulated: LocalAws
) -> None:
    cluster, gpu, _ = fleet(env, local_aws_simulated)
    td = definition(env, resourceRequirements=[GPU])
    first, second = run_ec2(env, cluster, td, count=2)["tasks"]
    assert first["containerInstanceArn"] == second["containerInstanceArn"] == gpu
    described = env.ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"], second["taskArn"]])
    ids = [t["containers"][0]["gpuIds"] for t in described["tasks"]]
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1]
    assert resource(instance(env, cluster, gpu), "GPU") == []

    third = run_ec2(env, cluster, td)
    assert third["tasks"] == []
    assert third["failures"] == [{"arn": gpu, "reason": "RESOURCE:GPU"}]

    # A stopped task gives its GPU back; the next task gets it.
    env.ecs.stop_task(cluster=cluster, task=first["taskArn"])
    assert resource(instance(env, cluster, gpu), "GPU") == ids[0]
    fourth = run_ec2(env, cluster, td)["tasks"][0]
    again = env.ecs.describe_tasks(cluster=cluster, tasks=[fourth["taskArn"]])["tasks"][0]
    assert again["containers"][0]["gpuIds"] == ids[0]
    for task in (second, fourth):
        env.ecs.stop_task(cluster=cluster, task=task["taskArn"])


def test_a_task_too_big_for_the_memory_left_fails_with_resource_memory(
    env: Env, local_aws_simulated: LocalAws
) -> None:
    cluster, gpu, cpu = fleet(env, local_aws_simulated)
    big = run_ec2(env, cluster, definition(env, memory=30000))["tasks"][0]
    assert big["containerInstanceArn"] == gpu
    response = run_ec2(env, cluster, definition(env, memory=9000), count=2)
    assert response["tasks"] == []
    assert response["failures"] == [{"arn": gpu, "reason": "RESOURCE:MEMORY"}] * 2
    small = run_ec2(env, cluster, definition(env, memory=4096))["tasks"][0]
    assert small["containerInstanceArn"] == cpu
    for task in (big, small):
        env.ecs.stop_task(cluster=cluster, task=task["taskArn"])
    assert resource(instance(env, cluster, gpu), "MEMORY") == 32768


def test_arm64_tasks_land_on_arm64_instances_only(env: Env, local_aws_simulated: LocalAws) -> None:
    cluster = unique("ec2-arm")
    env.ecs.create_cluster(clusterName=cluster)
    [x86] = local_aws_simulated.add_container_instances(cluster)
    arm_td = env.ecs.register_task_definition(
        family=unique("arm"),
        requiresCompatibilities=["EC2"],
        networkMode="bridge",
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        containerDefinitions=[{"name": "main", "image": "python", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    refused = run_ec2(env, cluster, arm_td)
    assert refused["failures"] == [{"arn": x86, "reason": "ATTRIBUTE"}]
    [arm] = local_aws_simulated.add_container_instances(cluster, architecture="arm64")
    placed = run_ec2(env, cluster, arm_td, count=2)["tasks"]
    assert {t["containerInstanceArn"] for t in placed} == {arm}
    for task in placed:
        env.ecs.stop_task(cluster=cluster, task=task["taskArn"])


def test_a_cluster_without_instances_refuses_ec2_tasks(env: Env) -> None:
    cluster = unique("empty")
    env.ecs.create_cluster(clusterName=cluster)
    with pytest.raises(ClientError) as exc:
        run_ec2(env, cluster, definition(env))
    error = exc.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == "No Container Instances were found in your cluster."


def test_the_container_process_sees_its_gpus(local_aws: LocalAws, tmp_path: Path) -> None:
    """As the ECS agent does: NVIDIA_VISIBLE_DEVICES names the container's gpuIds."""
    env = make_env(local_aws)
    cluster = unique("ec2-gpu")
    env.ecs.create_cluster(clusterName=cluster)
    [gpu] = local_aws.add_container_instances(cluster, gpus=2)
    out = tmp_path / "devices"
    command = ["sh", "-c", f'echo "$NVIDIA_VISIBLE_DEVICES" > {out}; sleep 60']
    td = definition(env, resourceRequirements=[{"type": "GPU", "value": "2"}], command=command)
    arn = run_ec2(env, cluster, td)["tasks"][0]["taskArn"]
    task = wait_status(Env(**{**vars(env), "cluster": cluster}), arn, "RUNNING")
    deadline = time.monotonic() + 5
    while not (out.exists() and out.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.read_text().strip().split(",") == task["containers"][0]["gpuIds"]
    assert task["containerInstanceArn"] == gpu
    env.ecs.stop_task(cluster=cluster, task=arn)
