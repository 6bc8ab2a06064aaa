"""The Prometheus series of each cluster: workers by group and state, hourly and accrued
cost, the namespace's hourly total; all gone with the object."""

from __future__ import annotations

import sys
import threading

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


def test_steps_of_many_clusters_at_once_do_not_break_each_other() -> None:
    # kopf runs steps in threads; the 1,000-cluster run lost status patches to "dictionary
    # changed size during iteration" raised here while another step replaced its series.
    errors: list[BaseException] = []
    status = _status("0.01", 1)

    def steps(worker: int) -> None:
        try:
            for n in range(1000):
                meta = {"uid": f"race-{worker}-{n % 100}", "namespace": "team-race", "name": "c"}
                metrics.observe_cluster(meta, status if n % 3 else None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=steps, args=(w,)) for w in range(8)]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often, as under a loaded operator
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switching)
    for worker in range(8):
        for n in range(100):
            metrics.observe_cluster(
                {"uid": f"race-{worker}-{n}", "namespace": "team-race", "name": "c"}, None
            )
    assert errors == []
    assert _value("dask_aws_namespace_hourly_usd", namespace="team-race") == 0
