"""The DaskAwsCluster spec: the single source of truth for the CRD, the engine and the API.

Every cross-field rule is one row of `RULES`, written once: pydantic checks the row's
Python callable (for the library and the operator) and the CRD carries its CEL
expression (`x-kubernetes-validations`, so the API server rejects the same object at
`kubectl apply`), both with the row's message (pydantic's may name the values at fault
instead). `tests/spec/test_rules.py` breaks every row in pydantic and in a real API
server; `tests/spec/test_spec.py` and `tests/operator/test_validation.py` feed whole bad
specs to each.

The descriptions are what `kubectl explain daskawsclusters.spec` shows: they are
written for the platform engineer reading it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from dask_aws import fargate, rules
from dask_aws.camel import CamelModel
from dask_aws.rules import Rule

DEFAULT_IMAGE = "ghcr.io/dask/dask:latest"
DEFAULT_GPU_IMAGE = "rapidsai/base:latest"
RESERVED_TAG_PREFIXES = ("aws:", "dask-aws.io/")
MAX_USER_TAGS = 40
MAX_WORKER_GROUPS = 10  # AWS allows 50 per resource; we add up to 10 of our own
DEFAULT_RETENTION_DAYS = 7
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

# What ECS takes in a container definition's image (RegisterTaskDefinition refuses more).
Image = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:./#@-]*$", max_length=255)]
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
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{1,17}$")]
CpuUnits = Annotated[int, Field(ge=128, le=16384)]
MemoryMiB = Annotated[int, Field(ge=512, le=122880)]
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


def _fargate_sizes() -> str:
    """Fargate's table in words (the one the rules check), for the cpu descriptions."""
    pairs = []
    for cpu in fargate.FARGATE_SIZES:
        memory = fargate.allowed_memory(cpu)
        if len(memory) <= 3:
            pairs.append(f"{cpu} with {'/'.join(map(str, memory))}")
        else:
            pairs.append(f"{cpu} with {memory[0]}-{memory[-1]} by {memory[1] - memory[0]}")
    return f"On Fargate, cpu/memory (MiB) must be a Fargate task size: {', '.join(pairs)}."


_FARGATE_SIZE = _fargate_sizes()
# Fixed text for CEL messages (which cannot be computed); tests check it against the table.
FARGATE_PAIRS = (
    "valid pairs: 256 with 512/1024/2048, 512 with 1024-4096, 1024 with 2048-8192, 2048 with "
    "4096-16384, 4096 with 8192-30720 (1024 steps), 8192 with 16384-61440 (4096 steps), 16384 "
    "with 32768-122880 (8192 steps)"
)
_PLAIN_ENV = "Plain values, visible in the task definition: put secrets in spec.secrets."


def _extra_args(command: str) -> Any:
    return Field(default_factory=list, description=f"Arguments appended to {command}.")


def _env(containers: str) -> Any:
    return Field(
        default_factory=dict, description=f"Environment variables of {containers}. {_PLAIN_ENV}"
    )


class _Ruled(rules.Ruled):
    """A model whose cross-field rules are rows of RULES, read by pydantic and by CEL."""

    @classmethod
    def rule_table(cls) -> Iterable[Rule[Any]]:
        return RULES


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
    """Where the tasks run (VPC and subnets, awsvpc networking) and who may reach the
    scheduler. dask-aws creates one security group per cluster: its members (the tasks)
    may talk to each other on every TCP port; clients only as allowed here."""

    vpc: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{1,17}$")] | None = Field(
        None,
        description="ID of the VPC to run the tasks in (vpc-...). Default: the region's "
        "default VPC; a region without one needs vpc and subnets.",
    )
    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{1,17}$")]] = Field(
        default_factory=list,
        description="IDs of the subnets of the VPC to place the tasks in (subnet-...). "
        "Default: every subnet of the given VPC, or the default VPC's default subnets (one "
        "per Availability Zone).",
    )
    security_groups: list[SecurityGroupId] = Field(
        default_factory=list,
        description="IDs of existing security groups to give the tasks instead of creating "
        "one; used as they are, never modified or deleted. They must let the tasks reach each "
        "other. allowedClientCidrs and allowedClientSecurityGroups are then ignored.",
    )
    assign_public_ip: bool | None = Field(
        None,
        description="Give every task a public IP (awsvpc assignPublicIp ENABLED). Fargate "
        "tasks must get out of their subnets to pull the image and reach CloudWatch Logs and "
        "Secrets Manager: in a subnet that routes 0.0.0.0/0 to an internet gateway only a "
        "public IP lets them, elsewhere a NAT gateway or VPC endpoints do. A spec whose "
        "subnets cannot is Stalled (ImagePullImpossible, SecretsUnreachable, "
        "LogsUnreachable) before any task starts. Who may connect is up to the security "
        "group, not the address. With launchType EC2 unset means none. "
        "Default: unset, automatic: a public IP exactly when a subnet routes 0.0.0.0/0 to "
        "an internet gateway, as the default VPC's subnets do.",
    )
    allowed_client_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="IPv4 or IPv6 CIDR blocks allowed to reach the scheduler port and the "
        "dashboard port (ingress rules of the created security group). Default: none, only "
        "the cluster's own tasks. 0.0.0.0/0 opens them to the internet.",
    )
    allowed_client_security_groups: list[SecurityGroupId] = Field(
        default_factory=list,
        description="IDs of security groups whose members may reach the scheduler port and "
        "the dashboard port, e.g. the group of the nodes or pods running Dask clients.",
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
    """The IAM roles of the ECS tasks. A role given by ARN is used as it is, never modified
    or deleted; otherwise dask-aws creates the role for this cluster and deletes it with it."""

    execution_role_arn: RoleArn | None = Field(
        None,
        description="ARN of an existing task execution role: what ECS uses to pull the "
        "image, write the logs and read spec.secrets. Default: a created role with the AWS "
        "managed AmazonECSTaskExecutionRolePolicy plus read access to exactly the secrets "
        "in spec.secrets.",
    )
    task_role_arn: RoleArn | None = Field(
        None,
        description="ARN of an existing task role: the AWS identity of the Dask code in the "
        "scheduler and workers (e.g. to read S3). Default: a created role with only "
        "taskRolePolicies attached.",
    )
    task_role_policies: list[PolicyArn] = Field(
        default_factory=list,
        description="ARNs of managed IAM policies to attach to the created task role, e.g. "
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess. Ignored when taskRoleArn is set. "
        "Default: none, so the Dask code gets no AWS permissions.",
    )


class Architecture(StrEnum):
    X86_64 = "X86_64"
    ARM64 = "ARM64"


class SchedulerSpec(CamelModel):
    """The Dask scheduler: one ECS task running `dask scheduler`."""

    cpu: CpuUnits = Field(
        1024,
        description="CPU of the scheduler task in ECS CPU units (1024 = 1 vCPU). " + _FARGATE_SIZE,
    )
    memory: MemoryMiB = Field(4096, description="Memory of the scheduler task in MiB.")
    architecture: Architecture = Field(
        Architecture.X86_64,
        description="CPU architecture of the scheduler task (the task definition's "
        "runtimePlatform): X86_64, or ARM64 for Graviton (the image must be built for it).",
    )
    port: Port = Field(
        8786, description="TCP port the scheduler listens on for workers and clients."
    )
    dashboard_port: Port = Field(
        8787,
        description="TCP port of the scheduler's dashboard and HTTP API; the operator reads "
        "the API to autoscale, detect idleness and retire workers gracefully.",
    )
    extra_args: list[str] = _extra_args("the `dask scheduler` command")
    env: dict[EnvName, str] = _env("the scheduler container")
    idle_timeout_seconds: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Seconds without Dask tasks after which the cluster counts as idle and "
        "idleAction applies. Default: unset, never idle.",
    )
    idle_action: IdleAction = Field(
        IdleAction.SCALE_TO_ZERO,
        description="What an idle cluster does: ScaleToZero stops the workers and keeps the "
        "scheduler, starting workers again when work arrives; Delete deletes this object, and "
        "with it the AWS resources as deletionPolicy says.",
    )


class RolloutSpec(_Ruled):
    """How workers move to a changed worker spec (image, cpu, memory, env, args), as a
    Deployment's rolling update: replacements start first, then the outdated workers are
    retired through the scheduler, so the data they hold moves to the others."""

    max_surge: Annotated[int, Field(ge=0, le=10000)] | None = Field(
        None,
        description="How many workers may run above replicas while rolling. Default: a "
        "quarter of replicas, rounded up, at least 1.",
    )
    max_unavailable: Annotated[int, Field(ge=0, le=10000)] = Field(
        0,
        description="How many workers may be missing below replicas while rolling. The "
        "default 0 keeps at least replicas workers running throughout.",
    )


class Capacity(StrEnum):
    ON_DEMAND = "OnDemand"
    SPOT = "Spot"
    SPOT_WITH_FALLBACK = "SpotWithFallback"


ResourceName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=63)]
GroupName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=32)
]


class _WorkerShape(CamelModel):
    """What every worker of a group is made of; spec.workers and each workerGroups entry."""

    replicas: Annotated[int, Field(ge=0, le=10000)] = Field(
        1,
        description="Number of worker tasks. With autoscaling it is only the starting size.",
    )
    cpu: CpuUnits = Field(
        4096,
        description="CPU of each worker task in ECS CPU units (1024 = 1 vCPU); also sets the "
        "default nthreads. " + _FARGATE_SIZE,
    )
    memory: MemoryMiB = Field(
        16384,
        description="Memory of each worker task in MiB; also the default memoryLimit.",
    )
    nthreads: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Threads per worker (dask worker --nthreads). Default: one per vCPU "
        "(cpu / 1024, at least 1).",
    )
    memory_limit: str | None = Field(
        None,
        description="Dask's memory limit per worker (dask worker --memory-limit), e.g. "
        "14GiB; Dask spills and pauses against it. Default: the task's memory.",
    )
    gpu: Annotated[int, Field(ge=0, le=8)] = Field(
        0,
        description="GPUs per worker task (an ECS GPU resource requirement); the workers "
        "then run `dask cuda worker`, so the image needs dask-cuda, and offer the Dask "
        "resource GPU=<gpu> unless resources says otherwise. Needs launchType EC2 on a "
        "cluster with GPU instances (clusterArn).",
    )
    architecture: Architecture = Field(
        Architecture.X86_64,
        description="CPU architecture of the worker tasks (the task definition's "
        "runtimePlatform): X86_64, or ARM64 for Graviton (the image must be built for it).",
    )
    ephemeral_storage_gib: Annotated[int, Field(ge=21, le=200)] | None = Field(
        None,
        alias="ephemeralStorageGiB",
        description="Ephemeral storage of each worker task in GiB (21-200), e.g. room for "
        "Dask to spill to disk. Fargate only. Default: Fargate's 20 GiB.",
    )
    resources: dict[ResourceName, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Dask worker resources each worker offers (dask worker --resources), "
        "e.g. {GPU: 1}: `client.submit(f, resources={'GPU': 1})` then runs only on these "
        "workers. Default: GPU=<gpu> for GPU workers, none otherwise.",
    )
    extra_args: list[str] = _extra_args("the worker command")
    env: dict[EnvName, str] = _env("the worker containers")
    image: Image | None = Field(
        None,
        description="Container image of these workers only; changing it rolls them and "
        "keeps the scheduler. Default: spec.image.",
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        description="The budget for rolling workers onto a changed worker spec.",
    )

    @property
    def capacity_of(self) -> Capacity:
        return Capacity.ON_DEMAND

    def dask_resources(self) -> dict[str, float]:
        """What `--resources` says: the given resources, else GPU=<gpu> for GPU workers."""
        if self.resources or not self.gpu:
            return dict(self.resources)
        return {"GPU": float(self.gpu)}


class WorkerSpec(_WorkerShape):
    """The default worker group: one ECS task per worker, running `dask worker` (`dask cuda
    worker` with GPUs). `kubectl scale` sets its replicas."""

    replicas: Annotated[int, Field(ge=0, le=10000)] = Field(
        1,
        description="Number of worker tasks; `kubectl scale` sets it. With spec.autoscaling "
        "it is only the starting size.",
    )
    spot: bool = Field(
        False,
        description="Run the workers on Fargate Spot (capacity provider FARGATE_SPOT): "
        "cheaper, but AWS may stop them at two minutes' notice; an interrupted worker is "
        "retired through the scheduler first, so its data moves to the others. The "
        "scheduler stays on demand. Needs launchType FARGATE.",
    )
    spot_fallback: bool = Field(
        True,
        description="With spot: start the workers Fargate Spot has no capacity for on "
        "demand instead of waiting for Spot capacity.",
    )

    @property
    def capacity_of(self) -> Capacity:
        if not self.spot:
            return Capacity.ON_DEMAND
        return Capacity.SPOT_WITH_FALLBACK if self.spot_fallback else Capacity.SPOT


class AutoscalingSpec(_Ruled):
    """Adaptive scaling. When set, the operator owns the worker count: it follows the
    scheduler's adaptive target within minimum and maximum, removing at most a quarter of
    the workers a step, and workers.replicas (or `kubectl scale`) is only the starting
    size. Unset: the cluster runs workers.replicas workers."""

    minimum: Annotated[int, Field(ge=0)] = Field(
        0, description="Fewest workers to keep, however idle; at most maximum."
    )
    maximum: Annotated[int, Field(ge=0, le=10000)] = Field(
        description="Most workers to run, however busy."
    )
    cooldown_seconds: Annotated[int, Field(ge=0)] = Field(
        30,
        description="Seconds to wait after a change of the worker count before the next, "
        "so the count does not flap.",
    )


class WorkerGroupSpec(_WorkerShape):
    """A named group of workers beside the default one (spec.workers): its own shape,
    capacity, task definition and scale, e.g. GPU workers, Graviton workers or cheap Spot
    workers next to a few on-demand ones that hold the data."""

    name: GroupName = Field(
        description="Name of the group, unique in the cluster (a DNS label, at most 32 "
        "characters); Events and status.workerGroups name it, and its task definition "
        "family ends with it."
    )
    capacity: Capacity = Field(
        Capacity.ON_DEMAND,
        description="Where the workers run: OnDemand; Spot (capacity provider FARGATE_SPOT, "
        "cheaper, interrupted at two minutes' notice: an interrupted worker is retired "
        "through the scheduler first, so its data moves, and replaced at once); "
        "SpotWithFallback (Spot, and on demand when Spot has no capacity). Spot needs "
        "launchType FARGATE.",
    )
    autoscaling: AutoscalingSpec | None = Field(
        None,
        description="This group's own bounds for adaptive scaling. Unset: the group runs "
        "replicas workers. Work that needs the group's resources counts toward it first.",
    )

    @property
    def capacity_of(self) -> Capacity:
        return self.capacity


class LogsSpec(CamelModel):
    """CloudWatch Logs for the scheduler and worker containers (the awslogs log driver)."""

    group: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[.\-_/#A-Za-z0-9]+$")] | (
        None
    ) = Field(
        None,
        description="Name of an existing log group to write to; used as it is, never "
        "modified or deleted. Default: a group /dask-aws/<name>-<id> created for this "
        "cluster and deleted with it.",
    )
    # No schema default: the API server would fill it in, and a namespace's DaskAwsPolicy
    # default could then never tell "left out" from "asked for 7".
    retention_days: (
        Annotated[int, Field(json_schema_extra={"enum": list(LOG_RETENTION_DAYS)})] | None
    ) = Field(
        None,
        description="Days CloudWatch Logs keeps the events of the created log group "
        "(one of the values CloudWatch allows). Default: the namespace's DaskAwsPolicy "
        f"default, else {DEFAULT_RETENTION_DAYS}.",
    )
    stream_prefix: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        "dask",
        description="Prefix of the log stream names (awslogs-stream-prefix): streams are "
        "named <prefix>/<container>/<task id>.",
    )

    @property
    def retention(self) -> int:
        return DEFAULT_RETENTION_DAYS if self.retention_days is None else self.retention_days

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"logs.retentionDays must be one of {allowed}")
        return value


class TlsSpec(CamelModel):
    """Mutual TLS between clients, the scheduler and the workers (Dask's tls:// comms).

    Each cluster gets its own certificate authority: only holders of this cluster's client
    certificate (the connection Secret's ca.crt, tls.crt and tls.key) can connect, and the
    dashboard is served over HTTPS with the cluster's certificate."""

    enabled: bool = Field(
        True,
        description="Speak tls:// with mutual authentication. false: plain tcp://, where "
        "whoever reaches the scheduler port can run code with the task role; the operator "
        "may forbid it (DASK_AWS_REQUIRE_TLS). Default: true.",
    )
    validity_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        365,
        description="Days the cluster's certificates are valid. A Warning Event and the "
        "Ready condition's reason (CertificateExpiring) say so 30 days (or a third of the "
        "validity, if shorter) before they expire. Changing it issues new certificates, "
        "which replaces the scheduler and every worker. Default: 365.",
    )


class DaskAwsClusterSpec(_Ruled):
    """The desired Dask cluster: a scheduler and workers as Amazon ECS tasks, with the AWS
    resources they need (ECS cluster, task definitions, IAM roles, security group, log
    group). dask-aws creates what the spec does not name and deletes it with the object."""

    image: Image = Field(
        DEFAULT_IMAGE,
        description="Container image of the scheduler and the workers. It must provide the "
        "`dask` command (distributed), and dask-cuda for GPU workers. The operator may allow "
        "only some registries.",
    )
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] | None = Field(
        None,
        description="AWS region of every resource, e.g. us-east-1. Default: the operator's "
        "(--region or DASK_AWS_REGION), else the AWS SDK's default region.",
    )
    launch_type: LaunchType = Field(
        LaunchType.FARGATE,
        description="ECS launch type of the scheduler and workers: FARGATE runs serverless "
        "tasks; EC2 runs them on the container instances of an existing cluster (clusterArn), "
        "the only way to get GPUs.",
    )
    cluster_arn: ClusterArn | None = Field(
        None,
        description="ARN of an existing ECS cluster to run the tasks in; used as it is, never "
        "modified or deleted. Default: an ECS cluster created for this object. Required "
        "for launchType EC2.",
    )
    platform_version: str | None = Field(
        None,
        description="Fargate platform version of the tasks, e.g. 1.4.0. Default: LATEST. "
        "Ignored for launchType EC2.",
    )
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    iam: IamSpec = Field(default_factory=IamSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    workers: WorkerSpec = Field(default_factory=WorkerSpec)
    worker_groups: Annotated[
        list[WorkerGroupSpec],
        Field(
            max_length=MAX_WORKER_GROUPS,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(
        default_factory=list,
        description="Named worker groups beside spec.workers, each with its own shape, "
        "capacity (OnDemand, Spot, SpotWithFallback), task definition, scale and autoscaling "
        f"bounds. At most {MAX_WORKER_GROUPS}; names unique.",
    )
    autoscaling: AutoscalingSpec | None = None
    logs: LogsSpec = Field(default_factory=LogsSpec)
    tls: TlsSpec = Field(default_factory=TlsSpec)
    secrets: dict[EnvName, SecretArn] = Field(
        default_factory=dict,
        description="Environment variables filled from AWS: variable name -> ARN of a "
        "Secrets Manager secret or SSM parameter. ECS injects them into the scheduler and the "
        "workers (the container definitions' secrets field), so values never appear in the "
        "task definition; the created execution role may read exactly these ARNs. A name "
        "must not also be in scheduler.env or workers.env.",
    )
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]
    ] = Field(
        default_factory=dict,
        description=f"AWS tags for every resource dask-aws creates, next to its own "
        f"dask-aws.io/ tags. At most {MAX_USER_TAGS}; keys must not start with "
        f"{' or '.join(RESERVED_TAG_PREFIXES)}.",
    )
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.DELETE,
        description="What deleting this object does on AWS. Delete: stop the tasks and "
        "delete every resource dask-aws created (never what the spec names) before the object "
        "goes. Retain: stop and delete nothing, and tag what dask-aws created "
        "dask-aws.io/retained=true.",
    )
    drift_period_seconds: int | None = Field(
        None,
        ge=30,
        le=86400,
        description="How often the AWS resources other than the tasks (roles and policies, "
        "security group rules, log group, task definitions, the network check) are read again "
        "and repaired when somebody changed them outside dask-aws. Between two such reads only "
        "the tasks are read; a spec change or an AWS error reads everything at once. Default: "
        "the operator's (DASK_AWS_DRIFT_SECONDS, 600).",
    )

    @property
    def group_names(self) -> list[str]:
        """ "" (the default group, spec.workers) and the named groups, in spec order."""
        return ["", *(g.name for g in self.worker_groups)]

    def worker_group(self, name: str) -> _WorkerShape:
        """The default group for "", else the named one (KeyError when there is none)."""
        if not name:
            return self.workers
        for group in self.worker_groups:
            if group.name == name:
                return group
        raise KeyError(name)


def _fargate_size(part: Literal["scheduler", "workers"]) -> Rule[DaskAwsClusterSpec]:
    def size_error(spec: DaskAwsClusterSpec) -> str | None:
        size = spec.scheduler if part == "scheduler" else spec.workers
        return fargate.fargate_size_error(size.cpu, size.memory)

    return Rule(
        model=DaskAwsClusterSpec,
        cel="self.launchType != 'FARGATE' || ("
        + fargate.cel_rule(f"self.{part}.cpu", f"self.{part}.memory")
        + ")",
        message=f"{part}: cpu/memory is not a Fargate task size; {FARGATE_PAIRS}",
        field_path=f".{part}",
        check=lambda s: s.launch_type is not LaunchType.FARGATE or size_error(s) is None,
        explain=lambda s: f"{part}: {size_error(s)}",
    )


def _env_clash(spec: DaskAwsClusterSpec) -> set[str]:
    workers = [spec.workers, *spec.worker_groups]
    return set(spec.secrets) & (set(spec.scheduler.env).union(*(set(w.env) for w in workers)))


def _group_size_error(spec: DaskAwsClusterSpec) -> str | None:
    for group in spec.worker_groups:
        error = fargate.fargate_size_error(group.cpu, group.memory)
        if error:
            return f"workerGroups[{group.name}]: {error}"
    return None


def _duplicate_groups(spec: DaskAwsClusterSpec) -> list[str]:
    names = [g.name for g in spec.worker_groups]
    return sorted({n for n in names if names.count(n) > 1})


def _groups_all(cel: str) -> str:
    """CEL: `cel` (about `g`) holds for every worker group."""
    return f"(!has(self.workerGroups) || self.workerGroups.all(g, {cel}))"


def _reserved_tags(spec: DaskAwsClusterSpec) -> list[str]:
    return [key for key in spec.tags if key.lower().startswith(RESERVED_TAG_PREFIXES)]


# Row order is the order of the messages in a combined error. Not annotated: as
# tuple[Rule[Any], ...] mypy would stop checking the rows' lambdas against their model.
RULES = (
    Rule(
        model=RolloutSpec,
        cel="!has(self.maxSurge) || self.maxSurge > 0 || self.maxUnavailable > 0",
        message="workers.rollout: maxSurge and maxUnavailable must not both be 0",
        check=lambda r: r.max_surge != 0 or r.max_unavailable > 0,
    ),
    Rule(
        model=AutoscalingSpec,
        cel="self.minimum <= self.maximum",
        message="autoscaling.minimum must not exceed maximum",
        check=lambda a: a.minimum <= a.maximum,
        explain=lambda a: (
            f"autoscaling.minimum ({a.minimum}) must not exceed maximum ({a.maximum})"
        ),
    ),
    _fargate_size("scheduler"),
    _fargate_size("workers"),
    Rule(
        model=DaskAwsClusterSpec,
        cel="self.workers.gpu == 0 || self.launchType == 'EC2'",
        message="workers.gpu needs launchType EC2 on a GPU cluster (clusterArn): "
        "Fargate has no GPUs",
        field_path=".workers.gpu",
        check=lambda s: not s.workers.gpu or s.launch_type is LaunchType.EC2,
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="self.launchType != 'EC2' || has(self.clusterArn)",
        message="launchType EC2 needs clusterArn: dask-aws does not create EC2 capacity",
        field_path=".launchType",
        check=lambda s: s.launch_type is not LaunchType.EC2 or bool(s.cluster_arn),
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="!self.workers.spot || self.launchType == 'FARGATE'",
        message="workers.spot uses FARGATE_SPOT and needs launchType FARGATE",
        field_path=".workers.spot",
        check=lambda s: not s.workers.spot or s.launch_type is LaunchType.FARGATE,
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="self.launchType != 'FARGATE' || " + _groups_all(fargate.cel_rule("g.cpu", "g.memory")),
        message="workerGroups: cpu/memory is not a Fargate task size (see workers.cpu for "
        "the valid pairs)",
        field_path=".workerGroups",
        check=lambda s: s.launch_type is not LaunchType.FARGATE or _group_size_error(s) is None,
        explain=lambda s: str(_group_size_error(s)),
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="self.launchType == 'EC2' || " + _groups_all("g.gpu == 0"),
        message="workerGroups: gpu needs launchType EC2 on a GPU cluster (clusterArn): "
        "Fargate has no GPUs",
        field_path=".workerGroups",
        check=lambda s: s.launch_type is LaunchType.EC2 or all(not g.gpu for g in s.worker_groups),
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="self.launchType == 'FARGATE' || " + _groups_all("g.capacity == 'OnDemand'"),
        message="workerGroups: capacity Spot and SpotWithFallback use FARGATE_SPOT and need "
        "launchType FARGATE",
        field_path=".workerGroups",
        check=lambda s: (
            s.launch_type is LaunchType.FARGATE
            or all(g.capacity is Capacity.ON_DEMAND for g in s.worker_groups)
        ),
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="self.launchType == 'FARGATE' || (!has(self.workers.ephemeralStorageGiB) && "
        + _groups_all("!has(g.ephemeralStorageGiB)")
        + ")",
        message="ephemeralStorageGiB is a Fargate setting: with launchType EC2 the instances' "
        "disks hold the tasks' storage",
        field_path=".launchType",
        check=lambda s: (
            s.launch_type is LaunchType.FARGATE
            or all(w.ephemeral_storage_gib is None for w in [s.workers, *s.worker_groups])
        ),
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel=_groups_all("self.workerGroups.exists_one(h, h.name == g.name)"),
        message="workerGroups: names must be unique",
        field_path=".workerGroups",
        check=lambda s: not _duplicate_groups(s),
        explain=lambda s: (
            "workerGroups: names must be unique; repeated: " + ", ".join(_duplicate_groups(s))
        ),
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="!has(self.secrets) || self.secrets.all(k, "
        "!(has(self.scheduler.env) && k in self.scheduler.env) && "
        "!(has(self.workers.env) && k in self.workers.env) && "
        + _groups_all("!(has(g.env) && k in g.env)")
        + ")",
        field_path=".secrets",
        message="secrets and env must not define the same variable",
        check=lambda s: not _env_clash(s),
        explain=lambda s: f"secrets and env both define {', '.join(sorted(_env_clash(s)))}",
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel=f"!has(self.tags) || size(self.tags) <= {MAX_USER_TAGS}",
        field_path=".tags",
        message=f"tags: at most {MAX_USER_TAGS} tags",
        check=lambda s: len(s.tags) <= MAX_USER_TAGS,
        explain=lambda s: f"tags: at most {MAX_USER_TAGS} tags, got {len(s.tags)}",
    ),
    Rule(
        model=DaskAwsClusterSpec,
        cel="!has(self.tags) || self.tags.all(k, "
        + " && ".join(f"!k.lowerAscii().startsWith('{p}')" for p in RESERVED_TAG_PREFIXES)
        + ")",
        field_path=".tags",
        message=f"tags: keys must not start with {' or '.join(RESERVED_TAG_PREFIXES)}",
        check=lambda s: not _reserved_tags(s),
        explain=lambda s: "; ".join(
            f"tags: the key {key!r} uses a reserved prefix" for key in _reserved_tags(s)
        ),
    ),
)
