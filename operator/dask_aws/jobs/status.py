"""The DaskAwsJob status, in batch/v1 Job terms (Complete, Failed and Suspended conditions,
startTime, completionTime, active/succeeded/failed) plus kstatus's Ready, Reconciling and
Stalled, so `kubectl wait --for=condition=Complete`, Argo Workflows, Flux and Argo CD all
read it. A terminal status (Complete or Failed) is written once and never changes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from dask_aws.camel import CamelModel
from dask_aws.status import Condition, LenientStatus


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class JobConditionType(StrEnum):
    COMPLETE = "Complete"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class JobCondition(Condition):
    type: JobConditionType = Field(  # type: ignore[assignment]
        description="Complete: the runner exited 0. Failed: the job gave up (reason "
        "BackoffLimitExceeded, DeadlineExceeded, ClusterFailed or InvalidSpec). Suspended: "
        "spec.suspend holds. For kstatus: Ready (= Complete), Reconciling (not finished yet), "
        "Stalled (= Failed)."
    )


class JobClusterStatus(CamelModel):
    name: str | None = Field(None, description="The DaskAwsCluster the runner uses.")
    owned: bool = Field(
        False, description="Whether the job created that cluster (and deletes it when done)."
    )
    scheduler_address: str | None = Field(
        None, description="The scheduler address the runner was given."
    )


class RunnerStatus(CamelModel):
    """The latest runner attempt."""

    attempt: int = Field(0, description="Which attempt this is, counting from 1.")
    task_arn: str | None = Field(None, description="ARN of the attempt's ECS task.")
    started_at: str | None = Field(None, description="When the task started (RFC 3339, UTC).")
    finished_at: str | None = Field(None, description="When the task stopped (RFC 3339, UTC).")
    exit_code: int | None = Field(None, description="The runner container's exit code.")
    stop_code: str | None = Field(
        None, description="ECS's stopCode, e.g. EssentialContainerExited or TaskFailedToStart."
    )
    stopped_reason: str | None = Field(None, description="ECS's stoppedReason, for people.")
    log_group: str | None = Field(
        None, description="The CloudWatch Logs group of the runner's output."
    )
    log_stream: str | None = Field(None, description="The attempt's log stream in logGroup.")


class JobAwsStatus(CamelModel):
    """Where the job's own AWS resources are (the runner's log group, task definition and
    execution role), recorded before any is created so deletion finds them."""

    region: str | None = Field(None, description="The AWS region of the runner.")
    role_arn: str | None = Field(
        None, description="The IAM role the operator assumed for the runner's AWS calls."
    )
    external_id: str | None = Field(None, description="The ExternalId given with roleArn.")
    cluster_arn: str | None = Field(None, description="The ECS cluster the runner runs in.")
    released: bool = Field(
        False,
        description="Whether the runner's task definition and execution role are deleted "
        "(once the job finished); the log group stays until the job object is deleted.",
    )


class JobStatus(LenientStatus):
    # Built up field by field by one decision (jobs/plan.py), on a copy of the last status.
    model_config = ConfigDict(frozen=False)

    phase: JobPhase = Field(
        JobPhase.PENDING,
        description="A summary for people: Pending (the cluster is starting), Running (a "
        "runner attempt runs or waits to be retried), Succeeded, Failed, Suspended.",
    )
    conditions: list[JobCondition] = Field(
        default_factory=list,
        description="Complete, Failed and Suspended (batch/v1 Job) and Ready, Reconciling, "
        "Stalled (kstatus), one of each type at most.",
    )
    observed_generation: int | None = Field(
        None, description="The metadata.generation of the spec this status describes."
    )
    start_time: str | None = Field(
        None,
        description="When the job started (RFC 3339, UTC); activeDeadlineSeconds counts from "
        "here. Reset when a suspended job resumes.",
    )
    completion_time: str | None = Field(
        None, description="When the job finished, Complete or Failed (RFC 3339, UTC)."
    )
    active: int = Field(0, description="Runner tasks running now (0 or 1).")
    succeeded: int = Field(0, description="Runner attempts that exited 0 (0 or 1).")
    failed: int = Field(0, description="Runner attempts that failed.")
    attempts: int = Field(0, description="Runner attempts started.")
    cluster: JobClusterStatus = Field(default_factory=JobClusterStatus)
    runner: RunnerStatus = Field(default_factory=RunnerStatus)
    aws: JobAwsStatus = Field(default_factory=JobAwsStatus)
    message: str | None = Field(None, description="What the job is doing or why it ended.")

    def is_(self, type_: JobConditionType) -> bool:
        return any(c.type is type_ and c.status == "True" for c in self.conditions)

    @property
    def finished(self) -> bool:
        return self.is_(JobConditionType.COMPLETE) or self.is_(JobConditionType.FAILED)
