"""A Ready cluster nobody touches costs its tasks' two reads per resync and no write: no IAM
call, no status patch, no new condition time."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest

from tests.operator.helpers import apply, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

NAMES = ("quiet-a", "quiet-b", "quiet-c")
RESYNC = 2.0


def counters(metrics: str, name: str, label: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in metrics.splitlines():
        match = re.match(rf"{name}\{{(.*)\}} ([0-9.e+]+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            found[labels[label]] += int(float(match.group(2)))
    return found


def snapshot(k8s: Any, ns: str) -> dict[str, tuple[str, list[str]]]:
    shots = {}
    for name in NAMES:
        obj = get(k8s, ns, name) or {}
        times = [c["lastTransitionTime"] for c in obj["status"]["conditions"]]
        shots[name] = (obj["metadata"]["resourceVersion"], times)
    return shots


def status_patches(k8s: Any) -> int:
    """PATCH requests for DaskAwsCluster status the API server answered, even no-op ones."""
    raw = k8s.kubectl("get", "--raw", "/metrics").stdout
    return sum(
        count
        for line in raw.splitlines()
        if line.startswith("apiserver_request_total{")
        and 'resource="daskawsclusters"' in line
        and 'subresource="status"' in line
        and 'verb="PATCH"' in line
        for count in [int(float(line.rsplit(" ", 1)[1]))]
    )


def test_a_quiet_resync_reads_two_things_and_writes_nothing(
    k8s: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    operator = start_simulated_operator(env={"DASK_AWS_RESYNC_SECONDS": str(RESYNC)})
    for name in NAMES:
        apply(k8s, ns, manifest(name, workers={"replicas": 2, "cpu": 512, "memory": 1024}))
    for name in NAMES:
        ready(k8s, ns, name)
    time.sleep(2 * RESYNC)  # the steps that saw Ready write it; the connection Secrets

    first = operator.metrics()
    before, patches = snapshot(k8s, ns), status_patches(k8s)
    time.sleep(5 * RESYNC)
    last = operator.metrics()
    calls = counters(last, "dask_aws_aws_calls_total", "operation") - counters(
        first, "dask_aws_aws_calls_total", "operation"
    )
    steps = counters(last, "dask_aws_reconciles_total", "kind") - counters(
        first, "dask_aws_reconciles_total", "kind"
    )

    assert snapshot(k8s, ns) == before
    assert status_patches(k8s) == patches
    assert steps["reconcile"] >= 3 * len(NAMES)
    assert set(calls) == {"ListTasks", "DescribeTasks"}, calls
    # A step is counted when it ends, its calls as they are made: a scrape taken while an
    # object's step is between its two reads splits that step, one step per object at each end.
    for operation in ("ListTasks", "DescribeTasks"):
        assert abs(calls[operation] - steps["reconcile"]) <= len(NAMES), (calls, steps)
