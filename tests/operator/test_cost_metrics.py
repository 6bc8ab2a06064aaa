"""The Prometheus series of each cluster: workers by group and state, hourly and accrued
cost, the namespace's hourly total; all gone with the object."""

from __future__ import annotations

from prometheus_client import REGISTRY

from dask_aws.controller import metrics
from dask_aws.status import ClusterStatus, CostStatus, WorkerCounts, WorkerGroupStatus


def _value(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def _status(hourly: str, running: int) -> ClusterStatus:
    return ClusterStatus(
        workers=WorkerCounts(desired=2, running=running),
        worker_groups=[WorkerGroupStatus(name="gpu", desired=1, running=1)],
        cost=CostStatus(hourly_usd=hourly, accrued_usd="1.5", as_of="2020-01-01T00:00:00Z"),
    )


def test_cluster_series_are_set_summed_per_namespace_and_removed() -> None:
    a = {"uid": "uid-a", "namespace": "team-m", "name": "a"}
    b = {"uid": "uid-b", "namespace": "team-m", "name": "b"}
    metrics.observe_cluster(a, _status("0.25", 1))
    metrics.observe_cluster(b, _status("0.5", 2))
    workers = "dask_aws_cluster_workers"
    assert _value(workers, namespace="team-m", name="a", group="default", state="running") == 1
    assert _value(workers, namespace="team-m", name="a", group="gpu", state="desired") == 1
    assert _value("dask_aws_cluster_hourly_usd", namespace="team-m", name="b") == 0.5
    accrued = _value("dask_aws_cluster_accrued_usd", namespace="team-m", name="a")
    assert accrued is not None and accrued > 1.5  # plus the hours since asOf
    assert _value("dask_aws_namespace_hourly_usd", namespace="team-m") == 0.75
    metrics.observe_cluster(a, None)
    assert _value(workers, namespace="team-m", name="a", group="default", state="running") is None
    assert _value("dask_aws_cluster_hourly_usd", namespace="team-m", name="a") is None
    assert _value("dask_aws_namespace_hourly_usd", namespace="team-m") == 0.5
    metrics.observe_cluster(b, None)
    assert _value("dask_aws_namespace_hourly_usd", namespace="team-m") == 0
