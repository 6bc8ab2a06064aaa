"""The DaskAwsCluster status, in Kubernetes conventions (kstatus: Ready/Reconciling/Stalled)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self, TypeVar

from pydantic import Field, ValidationError

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
    """One Kubernetes condition (the metav1.Condition fields)."""

    type: ConditionType = Field(
        description="Ready: the scheduler and every desired worker run. Reconciling: the "
        "operator is changing something. Stalled: it cannot go on until the spec changes."
    )
    status: str = Field(
        pattern=r"^(True|False|Unknown)$", description="Whether it holds: True, False or Unknown."
    )
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Why, in one CamelCase word for tools, e.g. Running or ClusterNotFound.",
    )
    message: str = Field("", description="Why, for people; AWS's error text included.")
    last_transition_time: str = Field(
        description="When status last changed, RFC 3339 in UTC (2006-01-02T15:04:05Z)."
    )
    observed_generation: int | None = Field(
        None, description="The metadata.generation of the spec this condition judged."
    )


class WorkerCounts(CamelModel):
    """Worker tasks, counted at the latest reconcile."""

    desired: int = Field(
        0, description="Workers wanted: spec.workers.replicas, or the autoscaler's target."
    )
    running: int = Field(0, description="Worker tasks ECS reports RUNNING.")
    pending: int = Field(0, description="Worker tasks started but not RUNNING yet.")


class WorkerGroupStatus(WorkerCounts):
    """One named worker group (spec.workerGroups), counted at the latest reconcile."""

    name: str = Field(description="The group's name, as in spec.workerGroups.")
    desired: int = Field(
        0, description="Workers wanted: the group's replicas, or its autoscaling target."
    )
    task_definition_arn: str | None = Field(
        None, description="ARN, with revision, of the group's ECS task definition."
    )


class CostStatus(CamelModel):
    """What the cluster costs, estimated from AWS's Fargate list prices (dask_aws/cost.py
    names its source and date; no Savings Plans, taxes or data transfer; the Spot price is
    an estimated discount). Tasks on the EC2 launch type cost nothing here: AWS bills the
    instances."""

    hourly_usd: str = Field(
        "0",
        alias="hourlyUSD",
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        description="US dollars per hour for the tasks running now (a decimal string).",
    )
    accrued_usd: str = Field(
        "0",
        alias="accruedUSD",
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        description="US dollars the cluster's tasks have cost since it was created, as of "
        "asOf (a decimal string); add hourlyUSD for each hour since asOf. Rewritten when the "
        "rate changes and at least every 15 minutes.",
    )
    as_of: str | None = Field(
        None, description="When accruedUSD was last brought up to date (RFC 3339, UTC)."
    )


class CreatedResource(CamelModel):
    """An AWS resource dask-aws created for this cluster. Recorded so that it is removed
    even after the spec stops pointing at it (another region, a resource the user brings)
    and when the spec can no longer be read at deletion."""

    kind: str = Field(
        description="Which resource: cluster, execution-role, task-role, security-group, "
        "tls-secret, log-group, scheduler-task-definition, worker-task-definition, or "
        "worker-task-definition/<group> for a named worker group."
    )
    id: str = Field(description="The ARN, ID or name AWS knows it by.")
    region: str = Field(description="The AWS region it lives in; empty for IAM (global).")


class AwsStatus(CamelModel):
    """The AWS resources this cluster uses, whether dask-aws created them or the spec named
    them: where to look in the AWS console."""

    cluster_arn: str | None = Field(None, description="ARN of the ECS cluster of the tasks.")
    execution_role_arn: str | None = Field(None, description="ARN of the IAM task execution role.")
    task_role_arn: str | None = Field(None, description="ARN of the IAM task role.")
    security_group_id: str | None = Field(
        None, description="ID of the tasks' (first) EC2 security group."
    )
    log_group: str | None = Field(None, description="Name of the CloudWatch Logs log group.")
    tls_secret_arn: str | None = Field(
        None,
        description="ARN of the Secrets Manager secret that holds the cluster's certificates "
        "and keys (the scheduler and workers read it through ECS secrets).",
    )
    scheduler_task_definition_arn: str | None = Field(
        None, description="ARN, with revision, of the scheduler's ECS task definition."
    )
    worker_task_definition_arn: str | None = Field(
        None, description="ARN, with revision, of the workers' ECS task definition."
    )
    scheduler_task_arn: str | None = Field(None, description="ARN of the scheduler's ECS task.")
    role_arn: str | None = Field(
        None,
        description="The IAM role the operator assumed for this cluster's AWS calls (the "
        "namespace's DaskAwsPolicy aws.roleArn), so it lives in that role's account; "
        "deletion uses it too. Unset: the operator's own identity.",
    )
    external_id: str | None = Field(
        None, description="The ExternalId given when assuming roleArn (not a secret)."
    )
    created: list[CreatedResource] = Field(
        default_factory=list,
        description="Every AWS resource dask-aws created for this cluster and has not removed "
        "yet, wherever it is; deletion removes (or, with Retain, keeps) exactly these.",
    )


class TlsStatus(CamelModel):
    """The cluster's certificates (never their keys)."""

    not_after: str | None = Field(
        None, description="When the cluster's certificates expire (RFC 3339, UTC)."
    )


class LenientStatus(CamelModel):
    @classmethod
    def lenient(cls, raw: Any) -> Self:
        """What the API server holds, ignoring fields this version does not know; an
        unreadable status counts as none (the next step writes a fresh one)."""
        try:
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            return cls.model_validate({k: v for k, v in dict(raw or {}).items() if k in known})
        except ValidationError:
            return cls()


class ClusterStatus(LenientStatus):
    """What the operator last saw and did. Tools should read conditions (kstatus: Ready,
    Reconciling, Stalled) and observedGeneration; phase is a summary for people."""

    phase: Phase = Field(
        Phase.PENDING,
        description="A summary for people: Pending (not reconciled yet), Creating (the "
        "scheduler is starting), Running (all as the spec says), Scaling (workers starting or "
        "stopping), Degraded (the scheduler is being replaced), Failed (stuck until the spec "
        "changes: see the Stalled condition), Deleting (AWS resources going).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="The Ready, Reconciling and Stalled conditions, one of each type; "
        "`kubectl wait --for=condition=Ready` reads them.",
    )
    observed_generation: int | None = Field(
        None, description="The metadata.generation of the spec this status describes."
    )
    scheduler_address: str | None = Field(
        None,
        description="Where Dask clients connect: tls://<scheduler task IP>:<port> "
        "(tcp:// when spec.tls.enabled is false). Unset until the scheduler task runs.",
    )
    dashboard_address: str | None = Field(
        None,
        description="URL of the Dask dashboard: https://<scheduler task IP>:<port>/status "
        "(http:// without TLS).",
    )
    tls: TlsStatus | None = Field(
        None, description="The cluster's certificates; unset when spec.tls.enabled is false."
    )
    replicas: int = Field(
        0, description="Running workers (the scale subresource and the Running column)."
    )
    workers: WorkerCounts = Field(default_factory=WorkerCounts)
    worker_groups: list[WorkerGroupStatus] = Field(
        default_factory=list,
        description="The named worker groups (spec.workerGroups), each counted as workers "
        "counts spec.workers.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    aws: AwsStatus = Field(default_factory=AwsStatus)
    cost: CostStatus | None = Field(None, description="What the cluster costs (an estimate).")
    message: str | None = Field(
        None, description="The latest notable outcome, for people (an AWS error, a fallback)."
    )

    @property
    def ready(self) -> bool:
        """The one answer to "is it Ready?" for every front end."""
        return self.condition_is(ConditionType.READY)

    def condition_is(self, type_: ConditionType) -> bool:
        return any(c.type is type_ and c.status == "True" for c in self.conditions)

    def condition(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type is type_), None)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # RFC 3339 in UTC, as Kubernetes writes times


def time_text(moment: datetime | None) -> str | None:
    return moment.strftime(TIME_FORMAT) if moment else None


def parse_time(text: str | None) -> datetime | None:
    """A time this module wrote, naive (UTC); None for none."""
    return datetime.strptime(text, TIME_FORMAT) if text else None


def now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


C = TypeVar("C", bound=Condition)


def set_condition(
    conditions: list[C],
    type_: StrEnum,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    model: type[C] = Condition,  # type: ignore[assignment]
) -> list[C]:
    """Replace one condition, keeping lastTransitionTime when its status did not change."""
    value = "True" if status else "False"
    previous = next((c for c in conditions if c.type is type_), None)
    changed = previous is None or previous.status != value
    condition = model(
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
