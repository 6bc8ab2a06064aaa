"""GPU workers' task definition, and bad arguments that fail fast and create nothing."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import dask.config
import pytest

from dask_aws import ECSCluster, FargateCluster
from dask_aws.cluster.core import ClusterStartError
from dask_aws.cluster.gc import inventory
from dask_aws.local import LocalAws
from dask_aws.spec import DEFAULT_GPU_IMAGE
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.python_api.helpers import SMALL


async def test_worker_gpu_registers_a_gpu_task_definition(
    local_aws_simulated: LocalAws, simulated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An EC2 RunTask without container instances is refused at once, as on AWS, and the
    # failed start deregisters what it registered: keep RunTask failing (a 5xx, retried)
    # instead, so that the definitions stay to be read.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    gpu_cluster = aws.ecs.create_cluster(clusterName=f"gpu-{uuid.uuid4().hex[:8]}")["cluster"]
    cluster = ECSCluster(
        asynchronous=True,
        quiet=True,
        cluster_arn=gpu_cluster["clusterArn"],
        worker_gpu=1,
        n_workers=1,
        startup_timeout=120,
    )
    names = cluster._target.names
    # No EC2 container instances here, so nothing is placed: inspect what was registered.
    local_aws_simulated.fail_next("ecs:RunTask", count=10**6, kind="5xx")
    starting = asyncio.ensure_future(cluster._start())
    try:
        deadline = time.monotonic() + 30
        while True:
            families = aws.ecs.list_task_definition_families(familyPrefix=names.worker_family)
            if families["families"]:
                break
            assert time.monotonic() < deadline, "no worker task definition registered"
            await asyncio.sleep(0.2)
        worker = aws.ecs.describe_task_definition(taskDefinition=names.worker_family)
        scheduler = aws.ecs.describe_task_definition(taskDefinition=names.scheduler_family)
    finally:
        await cluster.close()
        local_aws_simulated.clear_faults()
        with pytest.raises(ClusterStartError, match="closed while starting"):
            await starting
    definition = worker["taskDefinition"]
    container = definition["containerDefinitions"][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    # The Dask command follows the shell wrapper that serves the worker's HTTP over TLS.
    assert container["command"][:2] == ["sh", "-c"]
    assert container["command"][4:7] == ["dask", "cuda", "worker"]
    assert container["image"] == DEFAULT_GPU_IMAGE
    assert definition["requiresCompatibilities"] == ["EC2"]
    assert scheduler["taskDefinition"]["requiresCompatibilities"] == ["EC2"]
    assert "resourceRequirements" not in scheduler["taskDefinition"]["containerDefinitions"][0]
    assert tagged_resources(aws, cluster.uid) == []
    assert (
        aws.ecs.describe_clusters(clusters=[gpu_cluster["clusterArn"]])["clusters"][0]["status"]
        == "ACTIVE"
    )  # the user's cluster is used, never deleted
    aws.ecs.delete_cluster(cluster=gpu_cluster["clusterArn"])


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (
            FargateCluster,
            {"worker_cpu": 256, "worker_mem": 30720},
            "with cpu=256 memory must be one of 512, 1024, 2048 MiB",
        ),
        (FargateCluster, {"worker_gpu": 1}, "Fargate has none"),
        (ECSCluster, {}, "pass cluster_arn="),
    ],
)
def test_bad_arguments_fail_before_any_aws_call(
    simulated_env: dict[str, str], cls: type[ECSCluster], kwargs: dict[str, object], message: str
) -> None:
    # Point at a port where nothing listens: any AWS call would fail differently (and slowly).
    simulated_env_unreachable = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in simulated_env_unreachable.items():
            patch.setenv(key, value)
        started = time.monotonic()
        with pytest.raises(ValueError, match=re.escape(message)):
            cls(quiet=True, **kwargs)
        assert time.monotonic() - started < 1.0


def test_missing_cluster_arn_is_named_and_nothing_is_created(
    local_aws_simulated: LocalAws, simulated_env: dict[str, str]
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    before = set(inventory(aws))
    missing = "arn:aws:ecs:us-east-1:123456789012:cluster/does-not-exist"
    started = time.monotonic()
    with pytest.raises(ClusterStartError) as info:
        FargateCluster(cluster_arn=missing, quiet=True, **SMALL)
    assert time.monotonic() - started < 10
    assert f"clusterArn {missing} was not found or is not ACTIVE" in str(info.value)
    assert set(inventory(aws)) == before


def test_unreachable_scheduler_says_how_to_connect_and_cleans_up(
    local_aws_simulated: LocalAws, simulated_env: dict[str, str]
) -> None:
    """Simulated tasks listen nowhere: like a private IP seen from outside the VPC."""
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    before = set(inventory(aws))
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ClusterStartError) as info,
    ):
        FargateCluster(quiet=True, fargate_use_private_ip=True, **SMALL)
    assert "cannot be reached from here" in str(info.value)
    assert "It has a private IP: run this client inside the cluster's VPC" in str(info.value)
    assert "fargate_use_private_ip=False for a public IP" in str(info.value)
    assert set(inventory(aws)) == before


async def test_a_cluster_never_started_closes_without_aws_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    cluster = FargateCluster(asynchronous=True, quiet=True, **SMALL)  # never awaited
    started = time.monotonic()
    await cluster.close()
    assert time.monotonic() - started < 2
    assert cluster._teardown.done
