"""A FargateCluster whose scheduler task dies: the engine starts a new scheduler at a new
address, and the cluster and the Clients made from it follow (dask_aws.cluster.follow)."""

from __future__ import annotations

import time

import pytest
from distributed import Client

from dask_aws import FargateCluster
from dask_aws.local import LocalAws
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.python_api.helpers import SMALL, task_processes

pytestmark = pytest.mark.slow

# A Client left to its own reconnect closes itself after this many seconds without its
# scheduler; the replacement below is made to take longer.
CLIENT_TIMEOUT = 3


def _cluster_log(cluster: FargateCluster) -> str:
    return str(cluster.get_logs(scheduler=False, workers=False)["Cluster"])


def _scheduler_arn(cluster: FargateCluster) -> str:
    status = cluster.aws_status
    assert status is not None and status.aws.scheduler_task_arn is not None
    return status.aws.scheduler_task_arn


def _without_retries(n_workers: int, monkeypatch: pytest.MonkeyPatch) -> FargateCluster:
    # No botocore retries: an armed RunTask failure then fails a whole reconcile round, so
    # starting the new scheduler takes rounds (seconds), not one.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return FargateCluster(n_workers=n_workers, quiet=True, **SMALL)


def test_the_client_follows_a_replaced_scheduler_and_close_leaves_nothing(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    cluster = _without_retries(2, monkeypatch)
    uid = cluster.uid
    try:
        with Client(cluster, timeout=CLIENT_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=30)
            assert client.submit(sum, range(101)).result() == 5050
            before, arn = cluster.scheduler_address, _scheduler_arn(cluster)

            local_aws.fail_next("ecs:RunTask", 2, "throttle")
            killed = time.monotonic()
            local_aws.kill_task(arn)
            wait_for(lambda: cluster.scheduler_address != before, 120, "the cluster to follow")
            took = time.monotonic() - killed
            assert took > CLIENT_TIMEOUT, took  # so the Client had to be held
            after = cluster.scheduler_address
            assert _scheduler_arn(cluster) != arn
            wait_for(
                lambda: client.status == "running" and client.scheduler.address == after,
                60,
                "the Client to connect to the new scheduler",
            )
            # The same Client computes again, on the workers the engine rolled over.
            client.wait_for_workers(2, timeout=90)
            assert client.submit(sum, range(11)).result(timeout=60) == 55
            assert cluster.dashboard_link.startswith("https://127.")
            wait_for(lambda: len(cluster.scheduler_info["workers"]) == 2, 30, "worker events")

            with Client(cluster) as another:  # a Client made afterwards: the new one too
                assert another.scheduler.address == after
                assert another.submit(lambda x: x * 2, 21).result(timeout=30) == 42

            lines = _cluster_log(cluster)
            assert "the scheduler task is gone" in lines
            assert f"now connected to the new scheduler at {after}" in lines
    finally:
        cluster.close()
    assert tagged_resources(aws, uid) == []
    assert task_processes(local_aws, uid, aws) == []


def test_cluster_close_while_the_scheduler_is_replaced_closes_the_waiting_client(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    cluster = _without_retries(1, monkeypatch)
    uid = cluster.uid
    client = Client(cluster, timeout=CLIENT_TIMEOUT)
    try:
        client.wait_for_workers(1, timeout=30)
        local_aws.fail_next("ecs:RunTask", 100, "throttle")  # no new scheduler for now
        local_aws.kill_task(_scheduler_arn(cluster))
        # The cluster sees the loss either in a round that finds the task gone, or, when the
        # round that would start its replacement fails first (RunTask refused), only as a
        # dropped connection: the Clients are held in both cases, which is what is tested.
        wait_for(
            lambda: any(
                line in _cluster_log(cluster)
                for line in ("the scheduler task is gone", "RunTask failed")
            ),
            60,
            "the cluster to see the loss",
        )
        time.sleep(CLIENT_TIMEOUT + 1)
        assert client.status == "connecting"  # held: its own reconnect would have closed it
    finally:
        local_aws.clear_faults()
        cluster.close()
    wait_for(lambda: client.status == "closed", 30, "the waiting Client to close")
    client.close()
    assert tagged_resources(aws, uid) == []
    assert task_processes(local_aws, uid, aws) == []
