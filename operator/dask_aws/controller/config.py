"""Operator settings: flags, or DASK_AWS_* environment variables (what the Helm chart sets)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping

from pydantic import BaseModel, Field

from dask_aws.engine.memory import DRIFT_SECONDS

DEFAULT_MAX_WORKERS = 1000


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class OperatorConfig(BaseModel):
    namespaces: list[str] = Field(default_factory=list, description="empty: all namespaces")
    region: str | None = None
    resync_seconds: float = 60.0
    # How often roles, rules, log group and task definitions are read again (drift repaired);
    # a DaskAwsCluster's spec.driftPeriodSeconds overrides it.
    drift_seconds: float = Field(DRIFT_SECONDS, ge=0)
    standalone: bool = True
    peering_name: str | None = None
    metrics_port: int | None = 8080
    probe_port: int | None = 8081
    # Tenant guardrails: shell-style patterns; an empty list allows everything.
    allowed_cluster_arns: list[str] = Field(default_factory=list)
    allowed_role_arns: list[str] = Field(default_factory=list)
    allowed_image_prefixes: list[str] = Field(default_factory=list)
    # Workers one object may ask for: a typo (replicas: 10000) must not start a fleet.
    max_workers: int = Field(DEFAULT_MAX_WORKERS, ge=0)
    # Whether a spec may opt out of mutual TLS.
    require_tls: bool = False
    # A DaskAwsJob's first retry waits this long, each later one twice as long (at most 5
    # minutes): batch/v1 Job's 10 s by default; tests shorten it.
    job_backoff_seconds: float = Field(10.0, ge=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        max_workers = env.get("DASK_AWS_MAX_WORKERS")
        return cls(
            namespaces=_list(env.get("DASK_AWS_NAMESPACES")),
            region=env.get("DASK_AWS_REGION") or None,
            resync_seconds=float(env.get("DASK_AWS_RESYNC_SECONDS", "60")),
            drift_seconds=float(env.get("DASK_AWS_DRIFT_SECONDS", str(DRIFT_SECONDS))),
            allowed_cluster_arns=_list(env.get("DASK_AWS_ALLOWED_CLUSTER_ARNS")),
            allowed_role_arns=_list(env.get("DASK_AWS_ALLOWED_ROLE_ARNS")),
            allowed_image_prefixes=_list(env.get("DASK_AWS_ALLOWED_IMAGE_PREFIXES")),
            max_workers=int(max_workers) if max_workers else DEFAULT_MAX_WORKERS,
            require_tls=env.get("DASK_AWS_REQUIRE_TLS", "").lower() in ("1", "true", "yes"),
            job_backoff_seconds=float(env.get("DASK_AWS_JOB_BACKOFF_SECONDS", "10")),
        )


def matches(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)
