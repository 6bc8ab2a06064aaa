"""The DaskAwsPolicy spec and status: what a platform admin allows a tenant's namespace.

The CRD is generated from these models (crd.py), so the descriptions are what
`kubectl explain daskawspolicies.spec` shows, written for the admin reading it. Several
policies may apply to one namespace: merge.py says how they combine.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from dask_aws.camel import CamelModel
from dask_aws.spec import (
    LOG_RETENTION_DAYS,
    MAX_USER_TAGS,
    RESERVED_TAG_PREFIXES,
    RoleArn,
    SecurityGroupId,
)
from dask_aws.status import Condition

# The same patterns as the cluster spec's network.subnets and region (spec.py writes them
# inline; tests/tenancy/test_spec.py checks they still agree).
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{1,17}$")]
Region = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
# Money as a decimal string, as status.cost.hourlyUSD: binary floats cannot hold cents.
Usd = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$", max_length=32)]
Count = Annotated[int, Field(ge=0)]
# vCPUs are a number, not a string: ECS CPU units / 1024 are binary fractions (0.25, 0.5,
# 4), exact in a float, so sums compare exactly; CEL and printer columns take numbers as
# they are, and an admin writes `vcpu: 64` unquoted.
Vcpu = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# STS AssumeRole's ExternalId: 2-1224 characters of [\w+=,.@:/-] (ASCII \w here).
ExternalId = Annotated[
    str, Field(min_length=2, max_length=1224, pattern=r"^[A-Za-z0-9_+=,.@:/-]+$")
]
Pattern = Annotated[str, Field(min_length=1, max_length=2048)]
TagKey = Annotated[str, Field(min_length=1, max_length=128)]
TagValue = Annotated[str, Field(max_length=256)]
_RESERVED_CEL = {
    "rule": "self.all(k, "
    + " && ".join(f"!k.lowerAscii().startsWith('{p}')" for p in RESERVED_TAG_PREFIXES)
    + ")",
    "message": f"tags: keys must not start with {' or '.join(RESERVED_TAG_PREFIXES)}",
}
_COUNTED = (
    "Counted over the namespace's DaskAwsClusters (a DaskAwsJob's own cluster is one); "
    "unset: no limit; several policies: the smallest value wins."
)
_LIST = (
    "Empty: no restriction from this policy; several policies: every non-empty list must allow it."
)


class PolicyLimits(CamelModel):
    """The most the namespace may hold at once. A new cluster that would go over a limit is
    refused; a running cluster's workers are held at what the limits leave."""

    clusters: Count | None = Field(None, description=f"Most clusters. {_COUNTED}")
    workers: Count | None = Field(
        None, description=f"Most worker tasks, every worker group together. {_COUNTED}"
    )
    vcpu: Vcpu | None = Field(
        None,
        description="Most vCPUs (ECS CPU units / 1024) of the schedulers and workers, e.g. 64 "
        f"or 0.5. {_COUNTED}",
    )
    memory_mib: Count | None = Field(
        None,
        alias="memoryMiB",
        description=f"Most memory, in MiB, of the schedulers and workers. {_COUNTED}",
    )
    gpus: Count | None = Field(None, description=f"Most GPUs of the workers. {_COUNTED}")
    hourly_usd: Usd | None = Field(
        None,
        alias="hourlyUSD",
        description="Most US dollars per hour (a decimal string such as 12.50), summed over "
        "the clusters' status.cost.hourlyUSD, an estimate: refuses new clusters, never stops "
        f"running workers. {_COUNTED}",
    )


class PolicyUsage(CamelModel):
    """What the namespace holds now, with the keys of spec.limits."""

    clusters: Count = Field(description="Clusters in the namespace.")
    workers: Count = Field(description="Worker tasks the clusters want (their desired counts).")
    vcpu: Vcpu = Field(description="vCPUs of the schedulers and those workers.")
    memory_mib: Count = Field(
        alias="memoryMiB", description="Memory, in MiB, of the schedulers and those workers."
    )
    gpus: Count = Field(description="GPUs of those workers.")
    hourly_usd: Usd = Field(
        alias="hourlyUSD", description="US dollars per hour: the clusters' status.cost.hourlyUSD."
    )


class PolicyDefaults(CamelModel):
    """Settings filled into the namespace's cluster specs that leave them out; a spec's own
    value always wins. Several policies: per setting, the first policy by name that sets it
    (tags: merged, the first policy by name wins per key)."""

    subnets: list[SubnetId] = Field(
        default_factory=list,
        description="network.subnets for clusters that name none (subnet-...).",
    )
    security_groups: list[SecurityGroupId] = Field(
        default_factory=list,
        description="network.securityGroups for clusters that name none (sg-...).",
    )
    execution_role_arn: RoleArn | None = Field(
        None, description="iam.executionRoleArn for clusters that name none."
    )
    task_role_arn: RoleArn | None = Field(
        None, description="iam.taskRoleArn for clusters that name none."
    )
    log_retention_days: (
        Annotated[int, Field(json_schema_extra={"enum": list(LOG_RETENTION_DAYS)})] | None
    ) = Field(
        None,
        description="logs.retentionDays for clusters that leave it out (one of the values "
        "CloudWatch Logs allows).",
    )
    tags: Annotated[
        dict[TagKey, TagValue],
        Field(
            max_length=MAX_USER_TAGS,
            json_schema_extra={"x-kubernetes-validations": [_RESERVED_CEL]},
        ),
    ] = Field(
        default_factory=dict,
        description="AWS tags added to every cluster's tags; a key the cluster sets keeps the "
        f"cluster's value. Keys must not start with {' or '.join(RESERVED_TAG_PREFIXES)}.",
    )
    idle_timeout_seconds: Annotated[int, Field(ge=1)] | None = Field(
        None, description="scheduler.idleTimeoutSeconds for clusters that leave it out."
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"defaults.logRetentionDays must be one of {allowed}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = [k for k in value if k.lower().startswith(RESERVED_TAG_PREFIXES)]
        if reserved:
            raise ValueError(f"defaults.tags: reserved key(s) {', '.join(reserved)}")
        return value


class AwsIdentity(CamelModel):
    """The AWS identity the operator assumes for this namespace's clusters instead of its own."""

    role_arn: RoleArn = Field(description="ARN of the IAM role to assume (sts:AssumeRole).")
    external_id: ExternalId | None = Field(
        None, description="The ExternalId the role's trust policy requires, if any."
    )
    region: Region | None = Field(
        None,
        description="AWS region for clusters without spec.region, e.g. eu-west-1. Default: "
        "the operator's.",
    )


class DaskAwsPolicySpec(CamelModel):
    """Limits, allowlists, defaults and an AWS identity for the DaskAwsClusters of this
    namespace, set by a platform admin. Several policies in one namespace all apply: the
    strictest limit wins and a value must pass every allowlist."""

    limits: PolicyLimits = Field(default_factory=PolicyLimits)
    allowed_image_prefixes: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list,
        description="Prefixes every image must start with (spec.image, workers.image, each "
        "workerGroups image, and the RAPIDS image a GPU group defaults to), e.g. "
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/team-a/. {_LIST}",
    )
    allowed_role_arns: list[Pattern] = Field(
        default_factory=list,
        description="IAM role ARNs a cluster may name as iam.executionRoleArn or "
        "iam.taskRoleArn, and managed policy ARNs it may list in iam.taskRolePolicies: each "
        "an exact ARN or a shell-style pattern (* ? [...]), e.g. "
        f"arn:aws:iam::123456789012:role/team-a-*. {_LIST}",
    )
    allowed_cluster_arns: list[Pattern] = Field(
        default_factory=list,
        description="ECS cluster ARNs a cluster may name as clusterArn: exact ARNs or "
        f"shell-style patterns (* ? [...]). {_LIST}",
    )
    allow_plain_tcp: bool | None = Field(
        None,
        description="false: clusters must keep tls.enabled (plain tcp:// lets whoever "
        "reaches the scheduler run code with the task role). Unset or true: no opinion; any "
        "policy saying false wins.",
    )
    defaults: PolicyDefaults = Field(default_factory=PolicyDefaults)
    aws: AwsIdentity | None = Field(
        None,
        description="The AWS identity for this namespace's clusters. At most one policy of "
        "a namespace may set one (two different ones stop its clusters). Default: the "
        "operator's own.",
    )


class DaskAwsPolicyStatus(CamelModel):
    """What the operator last counted in the namespace."""

    used: PolicyUsage | None = Field(None, description="The namespace's usage now.")
    observed_generation: int | None = Field(
        None, description="The metadata.generation of the spec this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: the policy is read and merged; its message names the limits "
        "that are reached or nearly reached.",
    )
