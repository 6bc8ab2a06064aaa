"""A process holding a FargateCluster is SIGKILLed: `dask-aws gc --yes` removes what it left,
while a live cluster on the same shared cluster_arn keeps running and computing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import dask.config
import pytest
from distributed import Client

from dask_aws import FargateCluster
from dask_aws.aws import tags
from dask_aws.local import LocalAws
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.local_aws import local_aws_env
from tests.python_api.helpers import CHILD_PRELUDE, SMALL, read_line, spawn, task_processes

pytestmark = pytest.mark.slow


def _gc(local: LocalAws, *args: str) -> str:
    env = {**os.environ, **local_aws_env(local)}
    result = subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", "gc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _heartbeat(aws: object, group_id: str) -> float:
    groups = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]  # type: ignore[attr-defined]
    return float(tags.from_list(groups[0]["Tags"])[tags.HEARTBEAT])


def test_gc_after_sigkill_spares_the_live_cluster(
    local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    shared = aws.ecs.create_cluster(
        clusterName=f"shared-{uuid.uuid4().hex[:8]}", capacityProviders=["FARGATE", "FARGATE_SPOT"]
    )["cluster"]["clusterArn"]
    child = spawn(
        CHILD_PRELUDE
        + f"cluster = FargateCluster(cluster_arn={shared!r}, n_workers=1, quiet=True, **SMALL)\n"
        + "print('UID', cluster.uid, flush=True)\nsys.stdin.read()\n",
        local_aws_env(local_aws),
    )
    with dask.config.set(
        {"dask_aws.heartbeat-interval": "1s", "dask_aws.reconcile-interval": "1s"}
    ):
        live = FargateCluster(cluster_arn=shared, n_workers=1, quiet=True, **SMALL)
        try:
            killed = read_line(child, "UID ")
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            left = sorted(tagged_resources(aws, killed))
            assert len(left) >= 7  # roles, security group, log group, task definitions, tasks
            assert task_processes(local_aws, killed, aws)

            dry = _gc(local_aws)
            assert f"gone  FargateCluster {killed[:8]} ({killed})" in dry
            assert "on this host has exited" in dry
            assert f"keep  FargateCluster {live.name} ({live.uid})" in dry
            assert sorted(tagged_resources(aws, killed)) == left  # the dry run changed nothing

            collected = _gc(local_aws, "--yes")
            assert f"deleted FargateCluster {killed[:8]} ({killed})" in collected
            assert tagged_resources(aws, killed) == []
            assert task_processes(local_aws, killed, aws) == []

            # The live cluster on the same ECS cluster is untouched and still computes.
            assert aws.ecs.describe_clusters(clusters=[shared])["clusters"][0]["status"] == "ACTIVE"
            with Client(live) as client:
                client.wait_for_workers(1, timeout=30)
                assert client.submit(sum, [1, 2, 3]).result() == 6
            # ... and keeps its heartbeat fresh on its security group.
            group = live.aws_status.aws.security_group_id  # type: ignore[union-attr]
            first = _heartbeat(aws, group)
            time.sleep(2.5)
            assert _heartbeat(aws, group) > first
        finally:
            live.close()
            if child.poll() is None:
                child.kill()
    assert tagged_resources(aws, live.uid) == []
    assert aws.ecs.describe_clusters(clusters=[shared])["clusters"][0]["status"] == "ACTIVE"
    aws.ecs.delete_cluster(cluster=shared)
