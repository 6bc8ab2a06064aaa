"""Prometheus metrics: reconciles and their durations, AWS calls by outcome, clusters by phase."""

from __future__ import annotations

from typing import Any

import boto3
from prometheus_client import Counter, Gauge, Histogram

from dask_aws.status import Phase

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
_phases: dict[str, str] = {}


def observe_phase(uid: str, phase: str | None) -> None:
    if phase is None:
        _phases.pop(uid, None)
    else:
        _phases[uid] = phase
    values = list(_phases.values())
    for known in Phase:
        CLUSTERS.labels(known.value).set(values.count(known.value))


def instrument(session: boto3.Session) -> boto3.Session:
    def after(model: Any, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        error = (parsed or {}).get("Error", {}).get("Code")
        AWS_CALLS.labels(model.name, error or "ok").inc()

    session.events.register("after-call", after)
    return session
