"""Prometheus metrics: reconciles and their durations, AWS calls by outcome, clusters and
jobs by phase, each cluster's workers (by group) and estimated cost, and the cost per namespace.
The chart's Grafana dashboard reads exactly these (tests/chart/test_dashboard.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from prometheus_client import Counter, Gauge, Histogram

from dask_aws.jobs.status import JobPhase
from dask_aws.status import TIME_FORMAT, ClusterStatus, Phase

RECONCILES = Counter(
    "dask_aws_reconciles_total", "Reconcile steps by kind and result", ["kind", "result"]
)
RECONCILE_SECONDS = Histogram(
    "dask_aws_reconcile_duration_seconds", "Duration of one reconcile step", ["kind"]
)
AWS_CALLS = Counter(
    "dask_aws_aws_calls_total", "AWS API calls by operation and outcome", ["operation", "outcome"]
)
CLUSTERS = Gauge("dask_aws_clusters", "DaskAwsCluster objects by phase", ["phase"])
WORKERS = Gauge(
    "dask_aws_cluster_workers",
    "Worker tasks of a cluster by worker group (default: spec.workers) and state",
    ["namespace", "name", "group", "state"],
)
HOURLY_USD = Gauge(
    "dask_aws_cluster_hourly_usd",
    "Estimated US dollars per hour of a cluster's running tasks (Fargate list prices)",
    ["namespace", "name"],
)
ACCRUED_USD = Gauge(
    "dask_aws_cluster_accrued_usd",
    "Estimated US dollars a cluster's tasks have cost since it was created",
    ["namespace", "name"],
)
NAMESPACE_HOURLY_USD = Gauge(
    "dask_aws_namespace_hourly_usd",
    "Estimated US dollars per hour of the running tasks of a namespace's clusters",
    ["namespace"],
)
QUOTA_USED = Gauge(
    "dask_aws_namespace_quota_used",
    "What a namespace's clusters hold, under each DaskAwsPolicy limit key",
    ["namespace", "resource"],
)
QUOTA_LIMIT = Gauge(
    "dask_aws_namespace_quota_limit",
    "The namespace's limit (the strictest of its DaskAwsPolicies) for each limit key it sets",
    ["namespace", "resource"],
)
JOBS = Gauge("dask_aws_jobs", "DaskAwsJob objects by phase", ["phase"])
_phases: dict[str, str] = {}
_job_phases: dict[str, str] = {}
# What each cluster's series are, by uid: to remove them with the object.
_series: dict[str, tuple[str, str, list[str], float]] = {}
_series_lock = threading.Lock()


def _count_phases(
    store: dict[str, str], uid: str, phase: str | None, gauge: Gauge, known: Iterable[str]
) -> None:
    """One object's phase into `store`; the gauge counts objects per phase (0s included)."""
    if phase is None:
        store.pop(uid, None)
    else:
        store[uid] = phase
    values = list(store.values())
    for value in known:
        gauge.labels(value).set(values.count(value))


def observe_phase(uid: str, phase: str | None) -> None:
    _count_phases(_phases, uid, phase, CLUSTERS, [p.value for p in Phase])


def observe_job_phase(uid: str, phase: str | None) -> None:
    _count_phases(_job_phases, uid, phase, JOBS, [p.value for p in JobPhase])


def instrument(session: boto3.Session) -> boto3.Session:
    def after(model: Any, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        error = (parsed or {}).get("Error", {}).get("Code")
        AWS_CALLS.labels(model.name, error or "ok").inc()

    session.events.register("after-call", after)
    return session


def observe_cluster(meta: Any, status: ClusterStatus | None) -> None:
    """Sets (status) or removes (None) one cluster's worker and cost series."""
    # Steps of different objects run at once in kopf's threads: the namespace total reads
    # every series while another step replaces its own.
    with _series_lock:
        _observe_cluster(meta, status)


def _observe_cluster(meta: Any, status: ClusterStatus | None) -> None:
    uid, namespace, name = meta["uid"], meta.get("namespace") or "", meta["name"]
    old = _series.pop(uid, None)
    if old is not None:
        for group in old[2]:
            for state in ("desired", "running"):
                WORKERS.remove(namespace, name, group, state)
        HOURLY_USD.remove(namespace, name)
        ACCRUED_USD.remove(namespace, name)
    if status is not None:
        groups = [("default", status.workers), *((g.name, g) for g in status.worker_groups)]
        for group, counts in groups:
            WORKERS.labels(namespace, name, group, "desired").set(counts.desired)
            WORKERS.labels(namespace, name, group, "running").set(counts.running)
        hourly = float(status.cost.hourly_usd) if status.cost else 0.0
        HOURLY_USD.labels(namespace, name).set(hourly)
        ACCRUED_USD.labels(namespace, name).set(_accrued_now(status))
        _series[uid] = (namespace, name, [g for g, _ in groups], hourly)
    if old is not None or status is not None:
        total = sum(h for ns, _, _, h in _series.values() if ns == namespace)
        NAMESPACE_HOURLY_USD.labels(namespace).set(total)


def _accrued_now(status: ClusterStatus) -> float:
    cost = status.cost
    if cost is None or cost.as_of is None:
        return 0.0
    since = datetime.strptime(cost.as_of, TIME_FORMAT).replace(tzinfo=UTC)
    hours = max(0.0, (datetime.now(UTC) - since).total_seconds() / 3600)
    return float(cost.accrued_usd) + float(cost.hourly_usd) * hours


def observe_quota(namespace: str, used: Mapping[str, float], limits: Mapping[str, float]) -> None:
    """A namespace's usage and limits by limit key (clusters, workers, vcpu, ...)."""
    for resource, value in used.items():
        QUOTA_USED.labels(namespace, resource).set(value)
        if resource in limits:
            QUOTA_LIMIT.labels(namespace, resource).set(limits[resource])
        else:
            with contextlib.suppress(KeyError):
                QUOTA_LIMIT.remove(namespace, resource)
