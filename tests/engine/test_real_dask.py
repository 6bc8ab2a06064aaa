"""The engine on the local AWS with real `dask scheduler` / `dask worker` processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from distributed import Client

from dask_aws.aws.found import Target
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from dask_aws.names import ResourceNames
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import engine_client
from tests.fixtures.engine import converge, target
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.slow
SMALL = {"cpu": 512, "memory": 1024}


def _workers(client: Client) -> int:
    return len(client.scheduler_info(n_workers=-1)["workers"])


@contextmanager
def _computing(local_aws: Any, name: str, replicas: int) -> Iterator[tuple[Any, Target, Client]]:
    """A Ready cluster with `replicas` workers joined, its Client; deleted afterwards."""
    aws, _ = aws_for(local_aws.endpoint_url)
    tgt = target(name, scheduler=SMALL, workers={"replicas": replicas, **SMALL})
    status = converge(aws, tgt, timeout=120).status
    with engine_client(aws, status, timeout=30) as client:
        wait_for(lambda: _workers(client) == replicas, 60, f"{replicas} workers", 0.2)
        yield aws, tgt, client
    assert delete(aws, tgt).done
    assert tagged_resources(aws, tgt.owner.uid) == []


def test_scale_down_retires_gracefully_and_keeps_data(local_aws: Any) -> None:
    with _computing(local_aws, "graceful", 3) as (aws, tgt, client):
        assert client.submit(sum, range(101)).result() == 5050
        futures = client.scatter(list(range(30)), broadcast=False)
        held = {w for f in futures for w in client.who_has(f)[f.key]}
        assert len(held) > 1  # data spread over several workers

        smaller = _spec_with(tgt, replicas=1)
        step = reconcile(aws, smaller)
        assert step.status.message is None, step.status.message  # no fallback needed
        assert "RetireFallback" not in [e.reason for e in step.events]
        wait_for(lambda: _workers(client) == 1, 60, "1 worker", 0.2)
        assert client.gather(futures) == list(range(30))  # retired workers handed data over
        assert converge(aws, smaller).status.replicas == 1
    cluster = f"/{ResourceNames.for_owner(tgt.owner).ecs_cluster}/"
    assert [p for p in local_aws.running_processes() if cluster in p["taskArn"]] == []


def _spec_with(tgt: Target, **workers: Any) -> Target:
    changed = tgt.spec.workers.model_copy(update=workers)
    return Target(tgt.owner, tgt.spec.model_copy(update={"workers": changed}))


def _roll(aws: Any, tgt: Target, client: Client, previous: Any) -> tuple[Any, int]:
    """Reconcile until Ready; returns the status and the fewest Dask workers seen."""
    fewest = _workers(client)
    last = [previous]

    def step() -> Any:
        nonlocal fewest
        result = reconcile(aws, tgt, previous=last[0])
        last[0] = result.status
        for _ in range(5):
            fewest = min(fewest, _workers(client))
            time.sleep(0.1)
        return result.status if result.ready else None

    return wait_for(step, 180, "rolled and Ready", 0), fewest


def test_worker_changes_roll_without_losing_workers_or_data(local_aws: Any) -> None:
    with _computing(local_aws, "rolling", 2) as (aws, tgt, client):
        status = reconcile(aws, tgt).status
        futures = client.scatter(list(range(20)), broadcast=False)
        scheduler = status.aws.scheduler_task_arn
        for change in ({"memory": 2048}, {"image": "ghcr.io/dask/dask:2025.1.0"}):
            tgt = _spec_with(tgt, **change)
            status, fewest = _roll(aws, tgt, client, status)
            assert fewest >= 2, f"{change}: Dask had only {fewest} worker(s) while rolling"
            assert client.gather(futures) == list(range(20)), change
            assert status.aws.scheduler_task_arn == scheduler  # workers only
            definition = status.aws.worker_task_definition_arn
            cluster = status.aws.cluster_arn
            live = aws.ecs.list_tasks(cluster=cluster, startedBy=tgt.owner.uid)["taskArns"]
            described = aws.ecs.describe_tasks(cluster=cluster, tasks=live)["tasks"]
            on = {t["taskDefinitionArn"] for t in described if "worker" in t["group"]}
            assert on == {definition}, change
            wait_for(lambda: _workers(client) == 2, 60, "2 workers after the roll", 0.2)
