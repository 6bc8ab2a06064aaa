"""The operator's own Kubernetes calls keep their connections when every handler thread calls
at once (a thousand clusters being created write a thousand connection Secrets)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.config import kube_config

from dask_aws.controller import kube

pytestmark = [pytest.mark.k8s]

ROUNDS = 5


@pytest.fixture
def api(k8s: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The client reads KUBECONFIG when it is imported; point its default at the test's.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(k8s.kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kube.api_client.cache_clear()
    yield
    kube.api_client.cache_clear()


def test_all_handler_threads_calling_at_once_reuse_their_connections(
    api: None, k8s_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    core = client.CoreV1Api(kube.api_client())
    barrier = threading.Barrier(kube.HANDLER_THREADS)
    failures: list[BaseException] = []

    def handler_thread() -> None:
        try:
            for _ in range(ROUNDS):
                barrier.wait(timeout=30)
                core.list_namespaced_secret(k8s_namespace)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
            barrier.abort()

    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    threads = [threading.Thread(target=handler_thread) for _ in range(kube.HANDLER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    discarded = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert not discarded, f"{len(discarded)} connections thrown away, e.g. {discarded[0]}"
