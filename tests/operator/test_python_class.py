"""DaskAwsCluster (Python): create through the operator, compute, scale, close deletes."""

from __future__ import annotations

from typing import Any

import pytest
from distributed import Client

from dask_aws import DaskAwsCluster
from dask_aws.kube_cluster import DaskAwsClusterError
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, get

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


def test_python_class_computes_through_the_operator(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    start_operator()
    spec = {"scheduler": dict(SMALL), "workers": dict(SMALL)}
    with DaskAwsCluster(
        "notebook",
        namespace=k8s_namespace,
        spec=spec,
        n_workers=1,
        kubeconfig=str(k8s.kubeconfig),
        timeout=120,
    ) as cluster:
        uid = get(k8s, k8s_namespace, "notebook")["metadata"]["uid"]  # type: ignore[index]
        with Client(cluster) as client:
            assert client.submit(lambda x: x + 1, 41).result() == 42
            cluster.scale(3)
            client.wait_for_workers(3, timeout=90)
            assert sum(client.gather(client.map(abs, range(-5, 0)))) == 15
        assert cluster.dashboard_link.startswith("https://127.")
    assert get(k8s, k8s_namespace, "notebook") is None  # close() deleted it
    assert tagged_resources(aws_for(local_aws.endpoint_url)[0], uid) == []


def test_stalled_cluster_raises_with_the_operators_message(
    k8s: Any, k8s_namespace: str, start_operator: Any
) -> None:
    start_operator(env={"DASK_AWS_ALLOWED_IMAGE_PREFIXES": "registry.example.com/"})
    with pytest.raises(DaskAwsClusterError, match="allowedImagePrefixes"):
        DaskAwsCluster(
            "forbidden",
            namespace=k8s_namespace,
            kubeconfig=str(k8s.kubeconfig),
            spec={"workers": dict(SMALL), "scheduler": dict(SMALL)},
            timeout=60,
        )
    k8s.kubectl("delete", "dac", "forbidden", "-n", k8s_namespace, "--timeout=60s")
    wait_for(lambda: get(k8s, k8s_namespace, "forbidden") is None, 30, "deleted")
