"""A CPU group and a GPU group on the EC2 launch type, each autoscaled on its own: work
that asks for resources={"GPU": 1} grows only the GPU group and lands on its workers
(the local AWS's "GPU" is the declared resource and the GPU ids ECS assigns), while the
CPU group stays at its minimum; status and Events name the group."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
from distributed import get_worker

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import operator_client
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, apply, events, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

# The scheduler's adaptive target counts a task of unknown duration as 0.5 s; the GPU
# tasks here are declared long, so that it asks for as many workers as there are tasks.
LONG = {"DASK_DISTRIBUTED__SCHEDULER__DEFAULT_TASK_DURATIONS__GPUWORK": "60s"}
FAST = {"cooldownSeconds": 0}


def _group(obj: dict[str, Any] | None, name: str) -> dict[str, Any]:
    groups = ((obj or {}).get("status") or {}).get("workerGroups") or []
    return next((g for g in groups if g["name"] == name), {})


def _gpu_task_ips(aws: Any, cluster: str, uid: str) -> dict[str, list[str]]:
    arns = aws.ecs.list_tasks(cluster=cluster, startedBy=uid)["taskArns"]
    tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    found: dict[str, list[str]] = {}
    for task in tasks:
        if task["group"].startswith("dask-aws:worker/gpu") and task["lastStatus"] == "RUNNING":
            details = task["attachments"][0]["details"]
            ip = next(d["value"] for d in details if d["name"] == "privateIPv4Address")
            found[ip] = [g for c in task["containers"] for g in c.get("gpuIds", [])]
    return found


def test_gpu_work_grows_only_the_gpu_group_and_runs_on_its_workers(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    aws, _ = aws_for(local_aws.endpoint_url)
    ecs_cluster = aws.ecs.create_cluster(clusterName=f"gpu-{uuid.uuid4().hex[:8]}")["cluster"]
    arn = ecs_cluster["clusterArn"]
    local_aws.add_container_instances(arn, count=1, cpu=4096, memory=8192)
    local_aws.add_container_instances(arn, count=1, cpu=4096, memory=8192, gpus=2)
    start_operator()
    apply(
        k8s,
        ns,
        manifest(
            "groups",
            launchType="EC2",
            clusterArn=arn,
            scheduler={**SMALL, "env": LONG},
            workers={"replicas": 1, **SMALL},
            autoscaling={"minimum": 0, "maximum": 3, **FAST},
            workerGroups=[
                {
                    "name": "gpu",
                    "gpu": 1,
                    "replicas": 0,
                    **SMALL,
                    "autoscaling": {"minimum": 0, "maximum": 2, **FAST},
                }
            ],
        ),
    )
    obj = ready(k8s, ns, "groups", timeout=180)
    uid = obj["metadata"]["uid"]
    definition = aws.ecs.describe_task_definition(
        taskDefinition=_group(obj, "gpu")["taskDefinitionArn"]
    )["taskDefinition"]
    container = definition["containerDefinitions"][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert "GPU=1" in container["command"]

    def gpuwork(i: int) -> tuple[str, str | None]:
        time.sleep(8)
        return get_worker().address, os.environ.get("NVIDIA_VISIBLE_DEVICES")

    with operator_client(k8s, ns, "groups", timeout=30) as client:
        futures = [
            client.submit(gpuwork, i, key=f"gpuwork-{i}", resources={"GPU": 1}) for i in range(4)
        ]

        def grown() -> dict[str, Any] | None:
            current = get(k8s, ns, "groups")
            gpu = _group(current, "gpu")
            default = (current or {}).get("status", {}).get("workers", {})
            if gpu.get("running") == 2 and default.get("desired") == 0:
                return current
            return None

        grown_obj = wait_for(grown, 120, "the GPU group at 2 and the CPU group at 0")
        assert _group(grown_obj, "gpu")["desired"] == 2  # its maximum: 4 tasks wait
        ips = _gpu_task_ips(aws, arn, uid)
        results = client.gather(futures)
    for address, visible in results:
        host = address.split("://")[1].rsplit(":", 1)[0]
        assert host in ips, (address, ips)
        assert visible == ",".join(ips[host]) and visible.startswith("GPU-"), visible
    said = [e["message"] for e in events(k8s, ns, "groups")]
    assert any("worker group gpu" in m and "Started" in m for m in said), said
    k8s.kubectl("delete", "dac/groups", "-n", ns, "--timeout=120s", timeout=150)
    # Every task and the group's task definition went with it; the user's cluster stays.
    assert not aws.ecs.list_tasks(cluster=arn, startedBy=uid)["taskArns"]
    assert tagged_resources(aws, uid) == []
    aws.ecs.delete_cluster(cluster=arn)
