"""The DaskAwsPolicies of one namespace, merged into one Effective policy.

Merge rules:

1. Every DaskAwsPolicy in a cluster's namespace applies to it; they are read in name
   order, and no policy at all allows everything and defaults nothing.
2. Limits: each limit is the smallest value any policy sets (the strictest wins); a limit
   no policy sets is no limit. Messages name the policy that set it (on a tie, the first
   by name).
3. Allowlists (allowedImagePrefixes, allowedRoleArns, allowedClusterArns): a value is
   allowed only when every policy with a non-empty list allows it; an empty list says
   nothing.
4. Images must start with an allowed prefix; role, managed policy and cluster ARNs must
   equal an entry or match it as a shell-style pattern (* ? [...]), as the operator's own
   allowlists do.
5. allowPlainTcp: one policy saying false forbids tls.enabled false; true or unset says
   nothing.
6. Defaults: per setting, the first policy by name that sets it gives it (a list counts as
   set when it is not empty); tags are merged, the first policy by name winning per key.
7. A cluster's own value always wins over a default. Defaults are filled in before the
   allowlists are checked, so a defaulted role must pass them too.
8. AWS identity: at most one; policies naming the very same identity agree, two different
   identities are a conflict that stops the namespace's clusters until one is removed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dask_aws.aws import task_definitions
from dask_aws.controller.config import matches
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.tenancy.spec import AwsIdentity, DaskAwsPolicySpec, PolicyDefaults

# The keys of spec.limits (and status.used), as the API server spells them.
LIMIT_KEYS = ("clusters", "workers", "vcpu", "memoryMiB", "gpus", "hourlyUSD")


class PolicyConflict(Exception):
    """Two policies of a namespace say things that cannot both hold."""


@dataclass(frozen=True)
class Limit:
    key: str  # one of LIMIT_KEYS
    value: Decimal
    policy: str  # the policy that set it, for messages


@dataclass(frozen=True)
class Effective:
    """What a namespace's policies say together. `Effective()` is no policy at all."""

    policies: tuple[str, ...] = ()
    limits: Mapping[str, Limit] = field(default_factory=dict)
    # Per policy name, only non-empty lists: a value must pass each of them.
    image_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    role_arns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cluster_arns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    plain_tcp_forbidden_by: str | None = None
    defaults: PolicyDefaults = field(default_factory=PolicyDefaults)
    default_sources: Mapping[str, str] = field(default_factory=dict)  # wire field -> policy
    aws: AwsIdentity | None = None
    aws_policy: str | None = None


def effective(policies: Sequence[tuple[str, DaskAwsPolicySpec]]) -> Effective:
    """Merge (name, spec) pairs by the rules above; raise PolicyConflict on two identities."""
    ordered = sorted(policies, key=lambda p: p[0])
    limits: dict[str, Limit] = {}
    defaults: dict[str, Any] = {}
    sources: dict[str, str] = {}
    tags: dict[str, str] = {}
    aws: tuple[str, AwsIdentity] | None = None
    for name, spec in ordered:
        for key, raw in spec.limits.wire().items():
            value = Decimal(str(raw))
            if key not in limits or value < limits[key].value:
                limits[key] = Limit(key, value, name)
        tags = {**spec.defaults.tags, **tags}  # earlier names win per key
        for key, raw in spec.defaults.wire().items():
            if key != "tags" and raw != [] and key not in defaults:
                defaults[key], sources[key] = raw, name
        if spec.aws is not None:
            if aws is not None and aws[1] != spec.aws:
                raise PolicyConflict(
                    f"policies {aws[0]} and {name} both set an AWS identity "
                    f"({aws[1].role_arn} and {spec.aws.role_arn}); at most one may"
                )
            aws = aws or (name, spec.aws)
    if tags:
        defaults["tags"] = tags
    return Effective(
        policies=tuple(name for name, _ in ordered),
        limits=limits,
        image_prefixes=_lists(ordered, "allowed_image_prefixes"),
        role_arns=_lists(ordered, "allowed_role_arns"),
        cluster_arns=_lists(ordered, "allowed_cluster_arns"),
        plain_tcp_forbidden_by=next(
            (name for name, spec in ordered if spec.allow_plain_tcp is False), None
        ),
        defaults=PolicyDefaults.model_validate(defaults),
        default_sources=sources,
        aws=aws[1] if aws else None,
        aws_policy=aws[0] if aws else None,
    )


def _lists(
    ordered: Sequence[tuple[str, DaskAwsPolicySpec]], attr: str
) -> dict[str, tuple[str, ...]]:
    return {name: tuple(getattr(s, attr)) for name, s in ordered if getattr(s, attr)}


def apply_defaults(raw_spec: Mapping[str, Any], eff: Effective) -> dict[str, Any]:
    """A copy of the camelCase cluster spec with each default filled in where it is left out."""
    spec = copy.deepcopy(dict(raw_spec))
    d = eff.defaults
    network, iam = spec.get("network") or {}, spec.get("iam") or {}
    # A spec naming its own VPC would get subnets of another one; one asking for the created
    # group's client rules would have them silently ignored next to existing groups; one
    # listing taskRolePolicies would have them ignored next to an existing task role.
    if d.subnets and not network.get("vpc"):
        _fill(spec, "network", "subnets", d.subnets)
    if d.security_groups and not (
        network.get("allowedClientCidrs") or network.get("allowedClientSecurityGroups")
    ):
        _fill(spec, "network", "securityGroups", d.security_groups)
    _fill(spec, "iam", "executionRoleArn", d.execution_role_arn)
    if not iam.get("taskRolePolicies"):
        _fill(spec, "iam", "taskRoleArn", d.task_role_arn)
    _fill(spec, "logs", "retentionDays", d.log_retention_days)
    _fill(spec, "scheduler", "idleTimeoutSeconds", d.idle_timeout_seconds)
    if d.tags:
        spec["tags"] = {**d.tags, **(spec.get("tags") or {})}
    return spec


def _fill(spec: dict[str, Any], part: str, key: str, value: Any) -> None:
    """spec[part][key] = value when value is set and the spec leaves it out (absent, null
    or an empty list); `spec` is already a copy."""
    if value is None or value == []:
        return
    section = spec.get(part) or {}
    if section.get(key) in (None, []):
        spec[part] = {**section, key: copy.deepcopy(value)}


def images(spec: DaskAwsClusterSpec) -> list[tuple[str, str]]:
    """(field, image) of every image the cluster runs, as the task definitions pick them
    (a named GPU group without an image gets the RAPIDS one); worker images equal to
    spec.image are left out, its own check covers them."""
    found = [("image", spec.image)]
    for name in spec.group_names:
        image = task_definitions.image(spec, "worker", name)
        if image != spec.image:
            found.append((f"workerGroups[{name}].image" if name else "workers.image", image))
    return found


def forbidden(spec: DaskAwsClusterSpec, eff: Effective) -> list[str]:
    """One sentence per setting of `spec` a policy forbids (after apply_defaults)."""
    problems = []
    for field_, image in images(spec):
        for policy, prefixes in eff.image_prefixes.items():
            if not image.startswith(prefixes):
                problems.append(
                    f"{field_} {image} does not start with a prefix allowed by policy {policy} "
                    f"(allowedImagePrefixes: {', '.join(prefixes)})"
                )
    arns = [
        ("iam.executionRoleArn", spec.iam.execution_role_arn),
        ("iam.taskRoleArn", spec.iam.task_role_arn),
        *((f"iam.taskRolePolicies[{i}]", p) for i, p in enumerate(spec.iam.task_role_policies)),
    ]
    problems += _unlisted(arns, eff.role_arns, "allowedRoleArns")
    problems += _unlisted(
        [("clusterArn", spec.cluster_arn)], eff.cluster_arns, "allowedClusterArns"
    )
    if not spec.tls.enabled and eff.plain_tcp_forbidden_by:
        problems.append(
            "tls.enabled false (plain tcp://, no authentication) is forbidden by policy "
            f"{eff.plain_tcp_forbidden_by} (allowPlainTcp false)"
        )
    return problems


def _unlisted(
    values: Sequence[tuple[str, str | None]], lists: Mapping[str, tuple[str, ...]], setting: str
) -> list[str]:
    return [
        f"{field_} {value} is not allowed by policy {policy} ({setting}: {', '.join(allowed)})"
        for field_, value in values
        if value
        for policy, allowed in lists.items()
        if not matches(value, list(allowed))
    ]
