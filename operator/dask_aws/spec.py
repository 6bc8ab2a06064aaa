"""The DaskAwsCluster spec: the single source of truth for the CRD, the engine and the API.

Every cross-field rule is written twice, side by side: once in Python (a pydantic model
validator, for the library and the operator) and once in CEL (`x-kubernetes-validations`,
so the API server rejects the same object at `kubectl apply`). `tests/test_spec.py` runs
the same table of bad specs through both.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from dask_aws import fargate
from dask_aws.camel import CamelModel

DEFAULT_IMAGE = "ghcr.io/dask/dask:latest"
DEFAULT_GPU_IMAGE = "rapidsai/base:latest"
RESERVED_TAG_PREFIXES = ("aws:", "dask-aws.io/")
MAX_USER_TAGS = 40  # AWS allows 50 per resource; we add up to 10 of our own
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=255)]
RoleArn = Annotated[
    str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$")
]
PolicyArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$")]
SecretArn = Annotated[
    str, Field(pattern=r"^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:[0-9]{12}:.+$")
]
ClusterArn = Annotated[
    str, Field(pattern=r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255}$")
]
CpuUnits = Annotated[int, Field(ge=128, le=16384, description="CPU units; 1024 is one vCPU")]
MemoryMiB = Annotated[int, Field(ge=512, le=122880, description="Memory in MiB")]
Port = Annotated[int, Field(ge=1, le=65535)]
Cidr = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "isCIDR(self)", "message": "must be a CIDR block such as 192.0.2.0/24"}
            ]
        },
    ),
]


class CelRule:
    """An `x-kubernetes-validations` entry; kept next to the Python check it mirrors."""

    def __init__(self, rule: str, message: str, field_path: str | None = None) -> None:
        self.entry: dict[str, str] = {"rule": rule, "message": message}
        if field_path:
            self.entry["fieldPath"] = field_path


def cel(*rules: CelRule) -> dict[str, Any]:
    return {"x-kubernetes-validations": [r.entry for r in rules]}


class LaunchType(StrEnum):
    FARGATE = "FARGATE"
    EC2 = "EC2"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class IdleAction(StrEnum):
    SCALE_TO_ZERO = "ScaleToZero"
    DELETE = "Delete"


class NetworkSpec(CamelModel):
    vpc: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{1,17}$")] | None = Field(
        None, description="VPC to run in; default: the region's default VPC"
    )
    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{1,17}$")]] = Field(
        default_factory=list, description="Subnets for the tasks; default: all of the VPC's"
    )
    security_groups: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{1,17}$")]] = Field(
        default_factory=list,
        description="Existing security groups to use instead of creating one (never modified)",
    )
    assign_public_ip: bool = Field(False, description="Give tasks public IPs")
    allowed_client_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the scheduler and dashboard (none by default)",
    )
    allowed_client_security_groups: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{1,17}$")]] = (
        Field(default_factory=list, description="Security groups allowed to reach the scheduler")
    )

    @field_validator("allowed_client_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"allowedClientCidrs: {cidr!r} is not a CIDR block") from exc
        return value


class IamSpec(CamelModel):
    execution_role_arn: RoleArn | None = Field(
        None, description="Existing task execution role (used, never modified or deleted)"
    )
    task_role_arn: RoleArn | None = Field(
        None, description="Existing task role (used, never modified or deleted)"
    )
    task_role_policies: list[PolicyArn] = Field(
        default_factory=list, description="Extra managed policies for the created task role"
    )


class SchedulerSpec(CamelModel):
    cpu: CpuUnits = 1024
    memory: MemoryMiB = 4096
    port: Port = 8786
    dashboard_port: Port = 8787
    extra_args: list[str] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    idle_timeout_seconds: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Act on a cluster that has been idle this long"
    )
    idle_action: IdleAction = Field(IdleAction.SCALE_TO_ZERO)


class WorkerSpec(CamelModel):
    replicas: Annotated[int, Field(ge=0, le=10000)] = 1
    cpu: CpuUnits = 4096
    memory: MemoryMiB = 16384
    nthreads: Annotated[int, Field(ge=1)] | None = None
    memory_limit: str | None = Field(None, description="dask worker --memory-limit, e.g. 14GiB")
    gpu: Annotated[int, Field(ge=0, le=8)] = 0
    extra_args: list[str] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    spot: bool = Field(False, description="Run workers on FARGATE_SPOT")
    spot_fallback: bool = Field(True, description="Use on-demand when Spot has no capacity")


class AutoscalingSpec(CamelModel):
    model_config = ConfigDict(
        json_schema_extra=cel(
            CelRule("self.minimum <= self.maximum", "autoscaling.minimum must not exceed maximum")
        )
    )

    minimum: Annotated[int, Field(ge=0)] = 0
    maximum: Annotated[int, Field(ge=0, le=10000)]
    cooldown_seconds: Annotated[int, Field(ge=0)] = 30

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.minimum > self.maximum:
            raise ValueError(
                f"autoscaling.minimum ({self.minimum}) must not exceed maximum ({self.maximum})"
            )
        return self


class LogsSpec(CamelModel):
    group: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[.\-_/#A-Za-z0-9]+$")] | (
        None
    ) = Field(
        None, description="Existing log group to use (never deleted); default: one per cluster"
    )
    retention_days: Annotated[int, Field(json_schema_extra={"enum": list(LOG_RETENTION_DAYS)})] = 7
    stream_prefix: Annotated[str, Field(min_length=1, max_length=200)] = "dask"

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"logs.retentionDays must be one of {allowed}")
        return value


_FARGATE_RULES = [
    CelRule(
        "self.launchType != 'FARGATE' || ("
        + fargate.cel_rule(f"self.{part}.cpu", f"self.{part}.memory")
        + ")",
        f"{part}: cpu/memory is not a Fargate task size; valid pairs: 256 with 512/1024/2048, "
        "512 with 1024-4096, 1024 with 2048-8192, 2048 with 4096-16384, 4096 with 8192-30720 "
        "(1024 steps), 8192 with 16384-61440 (4096 steps), 16384 with 32768-122880 (8192 steps)",
        f".{part}",
    )
    for part in ("scheduler", "workers")
]
_SPEC_RULES = [
    *_FARGATE_RULES,
    CelRule(
        "self.workers.gpu == 0 || self.launchType == 'EC2'",
        "workers.gpu needs launchType EC2 on a GPU cluster (clusterArn): Fargate has no GPUs",
        ".workers.gpu",
    ),
    CelRule(
        "self.launchType != 'EC2' || has(self.clusterArn)",
        "launchType EC2 needs clusterArn: dask-aws does not create EC2 capacity",
        ".launchType",
    ),
    CelRule(
        "!self.workers.spot || self.launchType == 'FARGATE'",
        "workers.spot uses FARGATE_SPOT and needs launchType FARGATE",
        ".workers.spot",
    ),
]


class DaskAwsClusterSpec(CamelModel):
    model_config = ConfigDict(json_schema_extra=cel(*_SPEC_RULES))

    image: Annotated[str, Field(min_length=1, max_length=1024)] = DEFAULT_IMAGE
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] | None = Field(
        None, description="AWS region; default: the operator's or the session's"
    )
    launch_type: LaunchType = LaunchType.FARGATE
    cluster_arn: ClusterArn | None = Field(
        None, description="Existing ECS cluster to run in (used, never modified or deleted)"
    )
    platform_version: str | None = Field(None, description="Fargate platform version")
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    iam: IamSpec = Field(default_factory=IamSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    workers: WorkerSpec = Field(default_factory=WorkerSpec)
    autoscaling: AutoscalingSpec | None = None
    logs: LogsSpec = Field(default_factory=LogsSpec)
    secrets: dict[EnvName, SecretArn] = Field(
        default_factory=dict,
        description="Environment variable name -> Secrets Manager or SSM parameter ARN, "
        "delivered through the ECS secrets field",
    )
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]
    ] = Field(default_factory=dict, description="Tags for every AWS resource created")
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE

    @model_validator(mode="after")
    def _cross_field(self) -> Self:
        errors = list(self._errors())
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _errors(self) -> list[str]:
        errors: list[str] = []
        if self.launch_type is LaunchType.FARGATE:
            for part, size in (("scheduler", self.scheduler), ("workers", self.workers)):
                error = fargate.fargate_size_error(size.cpu, size.memory)
                if error:
                    errors.append(f"{part}: {error}")
        if self.workers.gpu and self.launch_type is not LaunchType.EC2:
            errors.append(
                "workers.gpu needs launchType EC2 on a GPU cluster (clusterArn): "
                "Fargate has no GPUs"
            )
        if self.launch_type is LaunchType.EC2 and not self.cluster_arn:
            errors.append("launchType EC2 needs clusterArn: dask-aws does not create EC2 capacity")
        if self.workers.spot and self.launch_type is not LaunchType.FARGATE:
            errors.append("workers.spot uses FARGATE_SPOT and needs launchType FARGATE")
        clash = set(self.secrets) & (set(self.scheduler.env) | set(self.workers.env))
        if clash:
            errors.append(f"secrets and env both define {', '.join(sorted(clash))}")
        if len(self.tags) > MAX_USER_TAGS:
            errors.append(f"tags: at most {MAX_USER_TAGS} tags, got {len(self.tags)}")
        for key in self.tags:
            if key.lower().startswith(RESERVED_TAG_PREFIXES):
                errors.append(f"tags: the key {key!r} uses a reserved prefix")
        return errors
