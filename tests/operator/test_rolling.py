"""`kubectl apply` of a worker change on a cluster holding data: the workers roll, Dask
never has fewer than `replicas` of them, and the data survives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from distributed import Client

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import operator_client
from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, apply, condition, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


def _workers(client: Client) -> int:
    return len(client.scheduler_info(n_workers=-1)["workers"])


def _rolled(k8s: Any, ns: str, generation: int, aws: Any) -> dict[str, Any] | None:
    obj = get(k8s, ns, "rolling")
    if not obj or obj["status"].get("observedGeneration") != generation:
        return None
    if (condition(obj, "Ready") or {}).get("status") != "True":
        return None
    status = obj["status"]
    cluster, uid = status["aws"]["clusterArn"], obj["metadata"]["uid"]
    live = aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus="RUNNING")
    tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=live["taskArns"])["tasks"]
    on = {t["taskDefinitionArn"] for t in tasks if t["group"].startswith("dask-aws:worker")}
    return obj if on == {status["aws"]["workerTaskDefinitionArn"]} else None


def test_worker_changes_roll_through_kubectl_without_losing_workers_or_data(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    start_operator()
    apply(k8s, ns, manifest("rolling", workers={"replicas": 2, **SMALL}))
    obj = ready(k8s, ns, "rolling")
    scheduler = obj["status"]["aws"]["schedulerTaskArn"]
    aws, _ = aws_for(local_aws.endpoint_url)
    with operator_client(k8s, ns, "rolling", timeout=30) as client:
        wait_for(lambda: _workers(client) == 2, 60, "2 workers")
        futures = client.scatter(list(range(20)), broadcast=False)
        for change in ({"memory": 2048}, {"image": "ghcr.io/dask/dask:2025.1.0"}):
            patch = json.dumps({"spec": {"workers": change}})
            k8s.kubectl("patch", "dac", "rolling", "-n", ns, "--type=merge", "-p", patch)
            generation = get(k8s, ns, "rolling")["metadata"]["generation"]  # type: ignore[index]
            fewest = _workers(client)

            def rolled(generation: int = generation) -> dict[str, Any] | None:
                nonlocal fewest
                fewest = min(fewest, _workers(client))
                return _rolled(k8s, ns, generation, aws)

            obj = wait_for(rolled, 180, f"the workers rolled for {change}", 0.2)
            assert fewest >= 2, f"{change}: Dask had only {fewest} worker(s) while rolling"
            assert client.gather(futures) == list(range(20)), change
            assert obj["status"]["aws"]["schedulerTaskArn"] == scheduler  # workers only
    k8s.kubectl("delete", "dac/rolling", "-n", ns, "--timeout=120s", timeout=150)
