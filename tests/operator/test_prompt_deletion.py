"""`kubectl delete` does not wait for kopf's 60 s poll when a timer is mid-reconcile."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.operator.helpers import apply, manifest, ready
from tests.operator.latency_proxy import LatencyProxy

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

COUNT = 20
LATENCY = 0.1  # seconds added to every AWS call
LIMIT = 15.0


def test_deletes_are_prompt_while_timers_reconcile(
    k8s: Any, k8s_namespace: str, local_aws_simulated: Any, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    names = [f"prompt-{i}" for i in range(COUNT)]
    with LatencyProxy(local_aws_simulated.endpoint_url, LATENCY) as proxy:
        # Resync every tick: each object's timer is busy most of the time, so deletions
        # keep arriving mid-reconcile (the case that waited for kopf's poll).
        start_simulated_operator(env={"DASK_AWS_RESYNC_SECONDS": "1"}, endpoint=proxy.url)
        for name in names:
            apply(k8s, ns, manifest(name, workers={"replicas": 0, "cpu": 512, "memory": 1024}))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: ready(k8s, ns, n, timeout=180), names))
        # Two at a time, each timed on its own: the others keep their timers busy.
        with ThreadPoolExecutor(2) as pool:
            seconds = list(pool.map(lambda n: _timed_delete(k8s, ns, n), names))
        times = dict(zip(names, seconds, strict=True))
    print(f"delete seconds ({LATENCY * 1000:.0f} ms per AWS call): {list(times.values())}")
    assert max(times.values()) <= LIMIT, times


def _timed_delete(k8s: Any, ns: str, name: str) -> float:
    start = time.monotonic()
    k8s.kubectl("delete", "dac", name, "-n", ns, "--timeout=90s", timeout=120)
    return round(time.monotonic() - start, 1)
