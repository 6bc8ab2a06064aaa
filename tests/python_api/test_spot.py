"""A Spot worker group under interruption: the interrupted worker hands its data to the
others before it exits, nothing is recomputed, and the replacement starts at once, on
demand when Fargate Spot has no capacity (SpotWithFallback)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from dask_aws import FargateCluster, cost
from dask_aws.local import LocalAws
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.python_api.helpers import SMALL

pytestmark = pytest.mark.slow

SPOT_GROUP = {
    "name": "spot",
    "capacity": "SpotWithFallback",
    "replicas": 1,
    **{"cpu": 512, "memory": 1024},
}


def _spot_tasks(aws: Any, cluster: FargateCluster, desired: str) -> list[dict[str, Any]]:
    status = cluster.aws_status
    assert status is not None and status.aws.cluster_arn
    arns = aws.ecs.list_tasks(
        cluster=status.aws.cluster_arn, startedBy=cluster.uid, desiredStatus=desired
    )["taskArns"]
    if not arns:
        return []
    tasks = aws.ecs.describe_tasks(cluster=status.aws.cluster_arn, tasks=arns)["tasks"]
    return [t for t in tasks if t["group"].startswith("dask-aws:worker/spot")]


def _ip(task: dict[str, Any]) -> str:
    details = task["attachments"][0]["details"]
    return next(d["value"] for d in details if d["name"] == "privateIPv4Address")


def test_an_interrupted_spot_worker_hands_its_data_over_and_is_replaced_on_demand(
    local_aws: LocalAws, aws_env: dict[str, str], tmp_path: Path
) -> None:
    aws, _ = aws_for(local_aws.endpoint_url)
    cluster = FargateCluster(n_workers=1, quiet=True, worker_groups=[SPOT_GROUP], **SMALL)
    try:
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            (spot,) = wait_for(lambda: _spot_tasks(aws, cluster, "RUNNING"), 30, "a spot task")
            assert spot["capacityProviderName"] == "FARGATE_SPOT"
            # The rate of what runs: scheduler and worker on demand, the group's on Spot.
            size = (cluster.aws_status.aws.cluster_arn.split(":")[3], 512, 1024)  # type: ignore[union-attr]
            expected = (
                2 * cost.task_hourly_usd(*size).usd_per_hour
                + cost.task_hourly_usd(*size, spot=True).usd_per_hour
            )
            assert cluster.hourly_usd == Decimal(cost.money(expected))
            said = str(cluster.get_logs(scheduler=False, workers=False)["Cluster"])
            assert f"about ${cluster.hourly_usd:.4f}/hour" in said, said
            host = _ip(spot)
            workers = client.scheduler_info(n_workers=-1)["workers"]
            on_spot = next(a for a in workers if a.split("://")[1].split(":")[0] == host)
            scattered = client.scatter(list(range(30)), workers=[on_spot])
            log = str(tmp_path / "computed.log")

            def _count_and_return(path: str, value: int) -> int:  # by value: not importable there
                with open(path, "a") as out:
                    out.write("computed\n")
                return value * 2

            computed = client.submit(_count_and_return, log, 21, workers=[on_spot], pure=False)
            assert computed.result() == 42
            assert set(client.who_has(computed)[computed.key]) == {on_spot}

            local_aws.set_spot_capacity(False)
            local_aws.kill_task(spot["taskArn"], spot=True)

            def replaced() -> dict[str, Any] | None:
                live = [
                    t
                    for t in _spot_tasks(aws, cluster, "RUNNING")
                    if t["taskArn"] != spot["taskArn"]
                ]
                running = [t for t in live if t["lastStatus"] == "RUNNING"]
                return (
                    running[0]
                    if running and len(client.scheduler_info(n_workers=-1)["workers"]) == 2
                    else None
                )

            new = wait_for(replaced, 120, "a replacement spot-group worker")

            def stopped() -> dict[str, Any] | None:
                (task,) = aws.ecs.describe_tasks(
                    cluster=spot["clusterArn"], tasks=[spot["taskArn"]]
                )["tasks"]
                return task if task["lastStatus"] == "STOPPED" else None

            gone = wait_for(stopped, 60, "the interrupted task to stop")
            assert gone["stopCode"] == "SpotInterruption"
            # The worker left through the scheduler before ECS's SIGKILL: a clean exit.
            assert gone["containers"][0].get("exitCode") == 0, gone["containers"]
            assert new.get("capacityProviderName") != "FARGATE_SPOT"  # on demand
            assert client.gather(scattered) == list(range(30))
            assert computed.result() == 42
            assert Path(log).read_text().count("computed") == 1  # moved, not recomputed
            assert on_spot not in client.scheduler_info(n_workers=-1)["workers"]
            logs = str(cluster.get_logs(scheduler=False, workers=False)["Cluster"])
            assert "on demand instead" in logs, logs
    finally:
        local_aws.set_spot_capacity(True)
        cluster.close()
    assert tagged_resources(aws, cluster.uid) == []
