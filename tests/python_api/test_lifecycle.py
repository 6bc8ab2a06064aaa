"""FargateCluster end to end on the local AWS: real `dask scheduler`/`dask worker` processes."""

from __future__ import annotations

import time
from typing import Any

import dask.config
import pytest
from botocore.exceptions import ClientError
from distributed import Client
from distributed.core import Status

from dask_aws import FargateCluster
from dask_aws.local import LocalAws
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.python_api.helpers import SMALL, task_processes

pytestmark = pytest.mark.slow


def _workers(client: Client) -> int:
    return len(client.scheduler_info(n_workers=-1)["workers"])


def test_compute_scale_adapt_close_leaves_nothing(
    local_aws: LocalAws, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    started = time.monotonic()
    cluster = FargateCluster(n_workers=2, **SMALL)
    start_seconds = time.monotonic() - started
    uid = cluster.uid
    try:
        printed = capsys.readouterr().out
        assert "created the ECS cluster, TLS secret, execution role, task role" in printed
        assert "workers 2/2 running (ready)" in printed
        assert cluster.scheduler_address.startswith("tls://127.")
        with pytest.raises(TypeError, match="TLS expects a `ssl_context`"):
            Client(cluster.scheduler_address, timeout=5)  # no credentials, no connection
        with Client(cluster) as client:  # cluster.security holds the client certificate
            client.wait_for_workers(2, timeout=30)
            assert client.submit(sum, range(101)).result() == 5050
            assert cluster.dashboard_link.startswith("https://127.")
            assert len(cluster.scheduler_info["workers"]) == 2

            cluster.scale(4)
            client.wait_for_workers(4, timeout=60)
            assert len(cluster.plan) == 4

            cluster.adapt(minimum=1, maximum=3, interval="300ms", wait_count=2)
            wait_for(lambda: _workers(client) == 1, 60, "adapt to shrink an idle cluster to 1")
            # The engine stopped exactly the retired workers' tasks: one worker task is left.
            wait_for(
                lambda: len([p for p in task_processes(local_aws, uid, aws)]) == 2,
                30,
                "scheduler + one worker process",
            )
            assert client.submit(sum, range(11)).result() == 55

            logs = cluster.get_logs()
            assert "Scheduler" in logs and "Cluster" in logs
            assert "Scheduler at:" in logs["Scheduler"]
            assert any(k.startswith("tls://127.") for k in logs)
    finally:
        cluster.close()
    assert tagged_resources(aws, uid) == []
    assert task_processes(local_aws, uid, aws) == []
    print(f"FargateCluster(n_workers=2) ready in {start_seconds:.1f}s on the local AWS")
    assert start_seconds < 30


async def test_async_context_manager(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    async with FargateCluster(asynchronous=True, n_workers=1, quiet=True, **SMALL) as cluster:
        uid = cluster.uid
        async with Client(cluster, asynchronous=True) as client:
            await client.wait_for_workers(1, timeout=30)
            assert await client.submit(lambda x: x + 1, 41) == 42
        logs = await cluster.get_logs(workers=False)
        assert "Scheduler" in logs and not any(k.startswith(("tcp://", "tls://")) for k in logs)
    assert tagged_resources(aws, uid) == []
    assert task_processes(local_aws, uid, aws) == []


def test_sync_context_manager_and_plain_tcp_on_request(local_aws: LocalAws, aws_env: Any) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    # security=False: plain tcp://, no TLS secret; a Client needs no credentials
    with FargateCluster(quiet=True, security=False, n_workers=1, **SMALL) as cluster:
        uid = cluster.uid
        assert cluster.scheduler_address.startswith("tcp://127.")
        assert cluster.aws_status and cluster.aws_status.aws.tls_secret_arn is None
        with Client(cluster.scheduler_address, timeout=30) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        assert tagged_resources(aws, uid) != []
    assert tagged_resources(aws, uid) == []


def test_idle_cluster_deletes_itself(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    """scheduler_timeout, as in dask-cloudprovider, but nothing is left behind."""
    aws, _ = aws_for(local_aws.endpoint_url)
    with dask.config.set({"dask_aws.reconcile-interval": "0.5s"}):
        cluster = FargateCluster(quiet=True, scheduler_timeout="2s", **SMALL)
        uid = cluster.uid
        wait_for(lambda: cluster.status == Status.closed, 30, "the idle cluster to close")

    def deleted() -> bool:
        try:
            return tagged_resources(aws, uid) == []
        except ClientError:
            return False  # listed, then deleted before its tags were read: still going

    wait_for(deleted, 30, "its resources to be deleted")
    assert task_processes(local_aws, uid, aws) == []
    assert (
        "idle for more than 2s (scheduler_timeout): closing"
        in cluster.get_logs(scheduler=False, workers=False)["Cluster"]
    )
    cluster.close()  # already closed: a no-op
