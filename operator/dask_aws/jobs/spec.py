"""The DaskAwsJob spec: the single source of truth for its CRD and the job controller.

Cross-field rules are rows of RULES, as in spec.py: pydantic checks the Python callable and
the CRD carries the CEL expression, with the same message. What a job runs (its cluster and
runner) is fixed at creation, as a batch/v1 Job's pod template is: a change mid-run would
leave no clear answer to "what did this job run?". Only suspend, activeDeadlineSeconds and
ttlSecondsAfterFinished may change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import Field

from dask_aws import fargate, rules
from dask_aws.rules import Rule
from dask_aws.spec import (
    FARGATE_PAIRS,
    CpuUnits,
    DaskAwsClusterSpec,
    EnvName,
    Image,
    LaunchType,
    MemoryMiB,
    RoleArn,
    SecretArn,
)

DEFAULT_BACKOFF_LIMIT = 6  # batch/v1 Job's default
MAX_BACKOFF_LIMIT = 100
_IMMUTABLE: Any = [
    {
        "rule": "self == oldSelf",
        "message": "is immutable once the job exists: to run something else, delete the job "
        "(kubectl delete waits until it is gone) and apply it again",
    }
]


class _Ruled(rules.Ruled):
    @classmethod
    def rule_table(cls) -> Iterable[Rule[Any]]:
        return RULES


class RunnerSpec(_Ruled):
    """The job's program: one ECS task next to the cluster, started once the cluster is
    Ready. It finds the scheduler in DASK_SCHEDULER_ADDRESS and, when the cluster uses TLS,
    the cluster's client certificate in Dask's TLS settings (filled from the cluster's
    secret through ECS secrets), so `distributed.Client()` with no arguments connects. Its
    output goes to CloudWatch Logs (`dask-aws job logs NAME`)."""

    image: Image | None = Field(
        None,
        description="Container image of the runner; it needs your program and distributed. "
        "Default: the cluster's spec.image.",
    )
    command: Annotated[list[Annotated[str, Field(max_length=32768)]], Field(min_length=1)] = Field(
        description="The program to run (the container's command), e.g. [python, -c, "
        "'...'] or [python, /app/etl.py]. Exit code 0 completes the job; anything else is "
        "a failed attempt."
    )
    args: list[Annotated[str, Field(max_length=32768)]] = Field(
        default_factory=list, description="Arguments appended to command."
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Environment variables of the runner. Plain values, visible in the task "
        "definition: put secrets in runner.secrets.",
    )
    secrets: dict[EnvName, SecretArn] = Field(
        default_factory=dict,
        description="Environment variables filled from AWS: variable name -> ARN of a Secrets "
        "Manager secret or SSM parameter (ECS secrets); the runner's own execution role may "
        "read exactly these and the cluster's TLS secret. A name must not also be in env.",
    )
    cpu: CpuUnits = Field(
        1024, description="CPU of the runner task in ECS CPU units (1024 = 1 vCPU)."
    )
    memory: MemoryMiB = Field(
        2048,
        description="Memory of the runner task in MiB. On Fargate, cpu/memory must be a "
        "Fargate task size (see DaskAwsCluster spec.workers.cpu).",
    )
    task_role_arn: RoleArn | None = Field(
        None,
        description="IAM role the program runs as. Default: the cluster's task role, so "
        "the program may do what its workers may.",
    )


class ClusterRef(_Ruled):
    """Where the job runs: a cluster made for it from `spec`, or the existing DaskAwsCluster
    `name` in the job's namespace. Neither: a cluster made for it with the default spec."""

    name: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(
        None,
        description="An existing DaskAwsCluster in this namespace: the job waits for it to be "
        "Ready and runs on it; the cluster is never changed or deleted by the job.",
    )
    spec: DaskAwsClusterSpec | None = Field(
        None,
        description="The spec of a DaskAwsCluster created for this job (named <job>-<id>, "
        "owned by the job, counted by the namespace's DaskAwsPolicy like any cluster) and "
        "deleted once the job finishes, is suspended or is deleted.",
    )


class DaskAwsJobSpec(_Ruled):
    """Run a Dask program once on AWS and report how it ended, as a batch/v1 Job does."""

    cluster: ClusterRef = Field(
        default_factory=ClusterRef,
        description="The cluster the runner uses. Immutable.",
        json_schema_extra={"x-kubernetes-validations": _IMMUTABLE},
    )
    runner: RunnerSpec = Field(
        description="The program. Immutable.",
        json_schema_extra={"x-kubernetes-validations": _IMMUTABLE},
    )
    backoff_limit: Annotated[int, Field(ge=0, le=MAX_BACKOFF_LIMIT)] = Field(
        DEFAULT_BACKOFF_LIMIT,
        description="Failed runner attempts retried before the job is Failed "
        "(BackoffLimitExceeded): backoffLimit 2 means at most 3 attempts. Retries wait 10 s, "
        "20 s, 40 s... (at most 5 minutes) after a failure, as a Job's pods do.",
    )
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Seconds the job may be active, counted from startTime (cluster start-up "
        "included); then its runner is stopped and it is Failed (DeadlineExceeded). Unset: "
        "no limit.",
    )
    ttl_seconds_after_finished: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="Seconds after the job finished (Complete or Failed) when the job object "
        "deletes itself, and with it the runner's log group. Unset: kept until deleted.",
    )
    suspend: bool = Field(
        False,
        description="True stops the runner (the attempt does not count as failed) and deletes "
        "the job's own cluster; false again starts over, with a new startTime.",
    )

    @property
    def on_fargate(self) -> bool:
        """Whether the runner surely runs on Fargate (a referenced cluster: not known yet)."""
        if self.cluster.name is not None:
            return False
        spec = self.cluster.spec or DaskAwsClusterSpec()
        return spec.launch_type is LaunchType.FARGATE


def runner_size_error(runner: RunnerSpec) -> str | None:
    return fargate.fargate_size_error(runner.cpu, runner.memory)


def _env_clash(runner: RunnerSpec) -> list[str]:
    return sorted(set(runner.secrets) & set(runner.env))


RULES = (
    Rule(
        model=ClusterRef,
        cel="!(has(self.name) && has(self.spec))",
        message="cluster: give name (an existing DaskAwsCluster) or spec (one made for the "
        "job), not both",
        check=lambda c: c.name is None or c.spec is None,
    ),
    Rule(
        model=RunnerSpec,
        cel="!has(self.secrets) || !has(self.env) || self.secrets.all(k, !(k in self.env))",
        message="runner: secrets and env must not define the same variable",
        field_path=".secrets",
        check=lambda r: not _env_clash(r),
        explain=lambda r: f"runner: secrets and env both define {', '.join(_env_clash(r))}",
    ),
    Rule(
        model=DaskAwsJobSpec,
        # A referenced cluster's launch type is known only at run time (the controller
        # checks it then); on EC2 any size that fits an instance goes.
        cel="has(self.cluster.name) || (has(self.cluster.spec) && "
        "self.cluster.spec.launchType != 'FARGATE') || ("
        + fargate.cel_rule("self.runner.cpu", "self.runner.memory")
        + ")",
        message=f"runner: cpu/memory is not a Fargate task size; {FARGATE_PAIRS}",
        field_path=".runner",
        check=lambda j: not j.on_fargate or runner_size_error(j.runner) is None,
        explain=lambda j: f"runner: {runner_size_error(j.runner)}",
    ),
)
