"""End to end: the operator on the real API server and the local AWS with real Dask."""

from __future__ import annotations

from typing import Any

import pytest
from distributed import Client

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import operator_client
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import apply, condition, event_reasons, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


def _workers(client: Client) -> int:
    return len(client.scheduler_info(n_workers=-1)["workers"])


def test_apply_compute_scale_heal_delete(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    operator = start_operator()
    apply(k8s, ns, manifest("demo"))
    k8s.kubectl(
        "wait", "dac/demo", "-n", ns, "--for=condition=Ready", "--timeout=120s", timeout=150
    )
    obj = ready(k8s, ns, "demo")
    uid = obj["metadata"]["uid"]
    address = obj["status"]["schedulerAddress"]
    assert address.startswith("tls://127.") and obj["status"]["replicas"] == 2
    secret = k8s.kubectl(
        "get",
        "secret",
        "demo-dask-connection",
        "-n",
        ns,
        "-o",
        "jsonpath={.data.scheduler-address}",
    ).stdout
    assert secret  # the connection Secret exists, base64 of the address
    table = k8s.kubectl("get", "dac", "-n", ns).stdout
    assert "Running" in table and address in table

    with operator_client(k8s, ns, "demo", timeout=30) as client:
        wait_for(lambda: _workers(client) == 2, 60, "2 workers")
        assert client.submit(sum, range(10)).result() == 45

        k8s.kubectl("scale", "dac/demo", "-n", ns, "--replicas=5")
        obj = wait_for(
            lambda: (
                (o := get(k8s, ns, "demo"))
                and o["status"].get("replicas") == 5
                and condition(o, "Ready")["status"] == "True"
                and o
            ),
            120,
            "5 replicas",
        )
        wait_for(lambda: _workers(client) == 5, 60, "5 workers connected")

        aws, _ = aws_for(local_aws.endpoint_url)
        cluster = obj["status"]["aws"]["clusterArn"]
        live = aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus="RUNNING")
        tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=live["taskArns"])["tasks"]
        worker = next(t for t in tasks if t["group"].startswith("dask-aws:worker"))
        local_aws.kill_task(worker["taskArn"])
        wait_for(lambda: "WorkerReplaced" in event_reasons(k8s, ns, "demo"), 60, "WorkerReplaced")
        wait_for(lambda: _workers(client) == 5, 90, "the replacement worker")

    scheduler_task = obj["status"]["aws"]["schedulerTaskArn"]
    local_aws.kill_task(scheduler_task)
    obj = wait_for(
        lambda: (
            (o := get(k8s, ns, "demo"))
            and o["status"].get("schedulerAddress") not in (None, address)
            and condition(o, "Ready")["status"] == "True"
            and o
        ),
        180,
        "a new scheduler, Ready",
    )
    assert "SchedulerReplaced" in event_reasons(k8s, ns, "demo")
    with operator_client(k8s, ns, "demo", timeout=30) as client:
        wait_for(lambda: _workers(client) == 5, 90, "workers on the new scheduler")
        assert client.submit(sum, range(4)).result() == 6

    k8s.kubectl("delete", "dac/demo", "-n", ns, "--timeout=180s", timeout=200)
    assert get(k8s, ns, "demo") is None
    assert tagged_resources(aws, uid) == []
    assert "dask_aws_reconciles_total" in operator.metrics()
