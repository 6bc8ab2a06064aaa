"""The operator SIGKILLed mid-create and mid-delete, then restarted: it converges,
with no duplicate task and no leaked resource."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import apply, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


def _live(aws: Any, uid: str) -> dict[str, int]:
    counts = {"scheduler": 0, "worker": 0}
    for cluster in aws.ecs.list_clusters()["clusterArns"]:
        arns = aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus="RUNNING")
        if arns["taskArns"]:
            for t in aws.ecs.describe_tasks(cluster=cluster, tasks=arns["taskArns"])["tasks"]:
                counts[t["group"].split(":")[1]] += 1
    return counts


def test_operator_killed_mid_create_and_mid_delete(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    aws, _ = aws_for(local_aws.endpoint_url)
    first = start_operator()
    apply(k8s, ns, manifest("phoenix", workers={"replicas": 3, "cpu": 512, "memory": 1024}))
    uid = wait_for(lambda: (o := get(k8s, ns, "phoenix")) and o["metadata"]["uid"], 30, "uid")
    # Kill as soon as the first AWS resource exists: mid-create.
    wait_for(lambda: tagged_resources(aws, uid), 60, "creation to begin")
    first.kill()
    assert _live(aws, uid)["worker"] < 3  # it really was interrupted

    second = start_operator()
    obj = ready(k8s, ns, "phoenix", timeout=150)
    assert obj["status"]["replicas"] == 3
    assert _live(aws, uid) == {"scheduler": 1, "worker": 3}

    k8s.kubectl("delete", "dac/phoenix", "-n", ns, "--wait=false")
    # Kill once deletion has begun on AWS (the tasks are stopping).
    wait_for(
        lambda: _live(aws, uid)["worker"] < 3 or get(k8s, ns, "phoenix") is None,
        60,
        "deletion to begin",
    )
    second.kill()
    time.sleep(1)
    start_operator()
    wait_for(lambda: get(k8s, ns, "phoenix") is None, 120, "the object to go")
    assert tagged_resources(aws, uid) == []
