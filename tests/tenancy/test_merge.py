"""Several DaskAwsPolicies merge by the rules in tenancy/merge.py's docstring."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from dask_aws.spec import DEFAULT_GPU_IMAGE, DaskAwsClusterSpec
from dask_aws.tenancy.merge import (
    Effective,
    PolicyConflict,
    apply_defaults,
    effective,
    forbidden,
)
from dask_aws.tenancy.spec import DaskAwsPolicySpec

ACCOUNT = "123456789012"
ROLE_A = f"arn:aws:iam::{ACCOUNT}:role/team-a-tasks"
ROLE_B = f"arn:aws:iam::{ACCOUNT}:role/team-b-tasks"
ECR = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/"
GPU_CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/gpu"


def policy(**wire: Any) -> DaskAwsPolicySpec:
    return DaskAwsPolicySpec.model_validate(wire)


def test_no_policy_allows_everything_and_defaults_nothing() -> None:
    assert effective([]) == Effective()
    spec = DaskAwsClusterSpec(tls={"enabled": False}, iam={"taskRoleArn": ROLE_A})
    assert forbidden(spec, Effective()) == []
    raw = {"image": "x", "tags": {"a": "b"}}
    assert apply_defaults(raw, Effective()) == raw


def test_the_strictest_limit_wins_and_names_its_policy() -> None:
    eff = effective(
        [
            ("team-b", policy(limits={"workers": 10, "vcpu": 8.5, "hourlyUSD": "3"})),
            ("team-a", policy(limits={"workers": 20, "vcpu": 16, "gpus": 0})),
            ("team-c", policy(limits={"workers": 10, "hourlyUSD": "2.75"})),
        ]
    )
    assert eff.policies == ("team-a", "team-b", "team-c")
    found = {k: (v.value, v.policy) for k, v in eff.limits.items()}
    assert found == {
        "workers": (Decimal(10), "team-b"),  # a tie: the first by name
        "vcpu": (Decimal("8.5"), "team-b"),
        "gpus": (Decimal(0), "team-a"),  # 0 is a limit, not "unset"
        "hourlyUSD": (Decimal("2.75"), "team-c"),
    }


def test_allowlists_are_kept_per_policy_and_every_non_empty_one_must_allow() -> None:
    eff = effective(
        [
            ("a", policy(allowedImagePrefixes=[ECR], allowedRoleArns=["*:role/team-a-*"])),
            ("b", policy(allowedImagePrefixes=[f"{ECR}team-a/", "ghcr.io/dask/"])),
            ("c", policy()),  # empty lists say nothing
        ]
    )
    assert eff.image_prefixes == {"a": (ECR,), "b": (f"{ECR}team-a/", "ghcr.io/dask/")}
    assert forbidden(DaskAwsClusterSpec(image=f"{ECR}team-a/dask:1"), eff) == []
    (problem,) = forbidden(DaskAwsClusterSpec(image=f"{ECR}team-b/dask:1"), eff)
    assert problem.startswith(f"image {ECR}team-b/dask:1 does not start") and "policy b" in problem
    assert len(forbidden(DaskAwsClusterSpec(image="docker.io/evil"), eff)) == 2


def test_plain_tcp_is_forbidden_when_any_policy_says_false() -> None:
    eff = effective([("a", policy(allowPlainTcp=True)), ("b", policy(allowPlainTcp=False))])
    assert eff.plain_tcp_forbidden_by == "b"
    (problem,) = forbidden(DaskAwsClusterSpec(tls={"enabled": False}), eff)
    assert problem.startswith("tls.enabled false") and "policy b (allowPlainTcp false)" in problem
    assert forbidden(DaskAwsClusterSpec(), eff) == []
    assert effective([("a", policy(allowPlainTcp=True))]).plain_tcp_forbidden_by is None


def test_defaults_come_from_the_first_policy_by_name_that_sets_them() -> None:
    eff = effective(
        [
            (
                "b",
                policy(
                    defaults={
                        "subnets": ["subnet-b"],
                        "taskRoleArn": ROLE_B,
                        "tags": {"x": "b", "y": "b"},
                    }
                ),
            ),
            ("a", policy(defaults={"subnets": [], "logRetentionDays": 30, "tags": {"x": "a"}})),
        ]
    )
    assert eff.defaults.subnets == ["subnet-b"]  # a's empty list does not set it
    assert eff.defaults.task_role_arn == ROLE_B and eff.defaults.log_retention_days == 30
    assert eff.defaults.tags == {"x": "a", "y": "b"}
    assert eff.default_sources == {"subnets": "b", "taskRoleArn": "b", "logRetentionDays": "a"}


def test_one_aws_identity_at_most() -> None:
    same = {"roleArn": ROLE_A, "region": "eu-west-1"}
    eff = effective([("a", policy(aws=same)), ("b", policy(aws=same)), ("c", policy())])
    assert eff.aws is not None and eff.aws.role_arn == ROLE_A and eff.aws_policy == "a"
    with pytest.raises(PolicyConflict, match="policies a and b both set an AWS identity"):
        effective([("b", policy(aws={"roleArn": ROLE_B})), ("a", policy(aws=same))])
    with pytest.raises(PolicyConflict):  # the same role with another external id differs
        effective([("a", policy(aws=same)), ("b", policy(aws={**same, "externalId": "xyz"}))])


DEFAULTS = effective(
    [
        (
            "p",
            policy(
                defaults={
                    "subnets": ["subnet-0a"],
                    "securityGroups": ["sg-0a"],
                    "executionRoleArn": ROLE_A,
                    "taskRoleArn": ROLE_A,
                    "logRetentionDays": 30,
                    "tags": {"team": "a", "env": "prod"},
                    "idleTimeoutSeconds": 600,
                }
            ),
        )
    ]
)


def test_apply_defaults_fills_what_is_missing() -> None:
    filled = apply_defaults({"image": "x"}, DEFAULTS)
    assert filled == {
        "image": "x",
        "network": {"subnets": ["subnet-0a"], "securityGroups": ["sg-0a"]},
        "iam": {"executionRoleArn": ROLE_A, "taskRoleArn": ROLE_A},
        "logs": {"retentionDays": 30},
        "scheduler": {"idleTimeoutSeconds": 600},
        "tags": {"team": "a", "env": "prod"},
    }
    DaskAwsClusterSpec.model_validate(filled)
    # Empty lists and nulls count as left out.
    assert apply_defaults({"network": {"subnets": [], "securityGroups": None}}, DEFAULTS)[
        "network"
    ] == {"subnets": ["subnet-0a"], "securityGroups": ["sg-0a"]}


def test_apply_defaults_never_overrides_and_never_mutates() -> None:
    raw: dict[str, Any] = {
        "network": {"subnets": ["subnet-0b"], "securityGroups": ["sg-0b"], "assignPublicIp": True},
        "iam": {"executionRoleArn": ROLE_B, "taskRoleArn": ROLE_B},
        "logs": {"retentionDays": 7, "group": "g"},
        "scheduler": {"idleTimeoutSeconds": 60, "cpu": 2048},
        "tags": {"team": "b"},
    }
    before = copy.deepcopy(raw)
    filled = apply_defaults(raw, DEFAULTS)
    assert raw == before
    assert filled == {**before, "tags": {"team": "b", "env": "prod"}}
    filled["network"]["subnets"].append("subnet-0c")
    assert raw == before  # a deep copy, not shared lists


def test_apply_defaults_leaves_out_what_would_silently_change_the_meaning() -> None:
    raw = {
        "network": {"vpc": "vpc-0b", "allowedClientCidrs": ["10.0.0.0/8"]},
        "iam": {"taskRolePolicies": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]},
    }
    filled = apply_defaults(raw, DEFAULTS)
    assert filled["network"] == raw["network"]  # subnets of another VPC; ignored client rules
    assert "taskRoleArn" not in filled["iam"]  # taskRolePolicies would be ignored
    assert filled["iam"]["executionRoleArn"] == ROLE_A


def test_forbidden_checks_every_image_place() -> None:
    eff = effective([("team-a", policy(allowedImagePrefixes=[ECR]))])
    spec = DaskAwsClusterSpec(
        image=f"{ECR}dask:1",
        launch_type="EC2",
        cluster_arn=GPU_CLUSTER,
        workers={"image": "docker.io/w"},
        worker_groups=[
            {"name": "big", "image": "docker.io/big"},
            {"name": "gpu", "gpu": 1},  # no image: the RAPIDS default
            {"name": "ok", "image": f"{ECR}ok"},
            {"name": "same"},  # spec.image, allowed
        ],
    )
    fields = [p.split(" ")[0] for p in forbidden(spec, eff)]
    assert fields == ["workers.image", "workerGroups[big].image", "workerGroups[gpu].image"]
    assert DEFAULT_GPU_IMAGE in forbidden(spec, eff)[2]
    assert forbidden(DaskAwsClusterSpec(image="docker.io/x"), eff)[0].startswith("image ")


def test_forbidden_checks_roles_and_the_cluster_arn() -> None:
    eff = effective(
        [
            ("a", policy(allowedRoleArns=[f"arn:aws:iam::{ACCOUNT}:role/team-a-*"])),
            ("b", policy(allowedClusterArns=[f"arn:aws:ecs:*:{ACCOUNT}:cluster/shared"])),
        ]
    )
    allowed = DaskAwsClusterSpec(
        iam={"executionRoleArn": ROLE_A, "taskRoleArn": ROLE_A},
        cluster_arn=f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/shared",
    )
    assert forbidden(allowed, eff) == []
    refused = DaskAwsClusterSpec(
        iam={
            "executionRoleArn": ROLE_B,
            "taskRoleArn": ROLE_B,
            "taskRolePolicies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        },
        cluster_arn=GPU_CLUSTER,
    )
    problems = forbidden(refused, eff)
    assert [p.split(" ")[0] for p in problems] == [
        "iam.executionRoleArn",
        "iam.taskRoleArn",
        "iam.taskRolePolicies[0]",
        "clusterArn",
    ]
    assert problems[0] == (
        f"iam.executionRoleArn {ROLE_B} is not allowed by policy a "
        f"(allowedRoleArns: arn:aws:iam::{ACCOUNT}:role/team-a-*)"
    )
    assert "policy b (allowedClusterArns" in problems[3]
    # A defaulted role passes the same check (defaults come first).
    defaulted = apply_defaults({}, effective([("z", policy(defaults={"taskRoleArn": ROLE_B}))]))
    assert forbidden(DaskAwsClusterSpec.model_validate(defaulted), eff)[0].startswith(
        "iam.taskRoleArn"
    )
