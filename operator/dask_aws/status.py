"""The DaskAwsCluster status, in Kubernetes conventions (kstatus: Ready/Reconciling/Stalled)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import Field

from dask_aws.camel import CamelModel


class Phase(StrEnum):
    PENDING = "Pending"
    CREATING = "Creating"
    RUNNING = "Running"
    SCALING = "Scaling"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    DELETING = "Deleting"


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Condition(CamelModel):
    type: ConditionType
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class WorkerCounts(CamelModel):
    desired: int = 0
    running: int = 0
    pending: int = 0


class AwsStatus(CamelModel):
    cluster_arn: str | None = None
    execution_role_arn: str | None = None
    task_role_arn: str | None = None
    security_group_id: str | None = None
    log_group: str | None = None
    scheduler_task_definition_arn: str | None = None
    worker_task_definition_arn: str | None = None
    scheduler_task_arn: str | None = None


class ClusterStatus(CamelModel):
    phase: Phase = Phase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    scheduler_address: str | None = None
    dashboard_address: str | None = None
    replicas: int = Field(0, description="Running workers (the scale subresource reads it)")
    workers: WorkerCounts = Field(default_factory=WorkerCounts)
    aws: AwsStatus = Field(default_factory=AwsStatus)
    message: str | None = Field(None, description="The latest notable outcome, for people")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> list[Condition]:
    """Replace one condition, keeping lastTransitionTime when its status did not change."""
    value = "True" if status else "False"
    previous = next((c for c in conditions if c.type is type_), None)
    changed = previous is None or previous.status != value
    condition = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message[:32768],
        last_transition_time=now()
        if changed or previous is None
        else previous.last_transition_time,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type is not type_] + [condition]
