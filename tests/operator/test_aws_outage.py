"""AWS unreachable under a Ready cluster: the status says so, nothing is declared gone, and
it is Ready again once AWS answers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.polling import wait_for
from tests.operator.helpers import apply, condition, event_reasons, get, manifest, ready
from tests.operator.latency_proxy import LatencyProxy

pytestmark = pytest.mark.k8s

OUTAGE = 10.0  # seconds AWS stays unreachable after it was reported


def test_an_aws_outage_is_reported_and_the_cluster_recovers(
    k8s: Any, k8s_namespace: str, local_aws_simulated: Any, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    with LatencyProxy(local_aws_simulated.endpoint_url, 0.0) as proxy:
        start_simulated_operator(
            env={"DASK_AWS_RESYNC_SECONDS": "1", "AWS_MAX_ATTEMPTS": "2"}, endpoint=proxy.url
        )
        apply(k8s, ns, manifest("outage", workers={"replicas": 2, "cpu": 512, "memory": 1024}))
        before = ready(k8s, ns, "outage")["status"]

        proxy.down.set()
        during = wait_for(
            lambda: (
                (o := get(k8s, ns, "outage"))
                and condition(o, "Ready")["reason"] == "AwsUnreachable"
                and o
            ),
            60,
            "Ready=False with reason AwsUnreachable",
        )
        status = during["status"]
        assert condition(during, "Ready")["status"] == "False"
        assert condition(during, "Reconciling")["status"] == "True"  # retried, not Stalled
        assert "could not be reached" in condition(during, "Ready")["message"]
        # Not declared gone: the last known cluster stays in the status.
        assert status["phase"] == before["phase"]
        assert status["schedulerAddress"] == before["schedulerAddress"]
        assert status["aws"]["created"] == before["aws"]["created"]
        assert "AwsUnreachable" in event_reasons(k8s, ns, "outage")
        time.sleep(OUTAGE)  # several more resyncs while AWS stays away

        proxy.down.clear()
        after = ready(k8s, ns, "outage", timeout=90)["status"]
        assert after["schedulerAddress"] == before["schedulerAddress"]  # same cluster
        k8s.kubectl("delete", "dac/outage", "-n", ns, "--timeout=90s", timeout=120)
