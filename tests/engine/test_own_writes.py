"""Deleting what this process made trusts what it wrote (aws/own_writes.py): no listing of
a role's policies or a family's revisions, and still nothing left; what somebody changed
behind its back is found by listing after all."""

from __future__ import annotations

import uuid
from typing import Any

from dask_aws.aws import iam_roles, task_definitions
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import Refs
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec
from tests.fixtures.aws_clients import aws_for

LISTS = {"ListAttachedRolePolicies", "ListRolePolicies", "ListTaskDefinitions"}


def _target() -> Target:
    owner = Owner(uid=str(uuid.uuid4()), name=f"own-{uuid.uuid4().hex[:6]}")
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:token"
    return Target(owner, DaskAwsClusterSpec(secrets={"TOKEN": secret}))


def _refs(aws: Any, target: Target) -> Refs:
    return Refs(
        execution_role_arn=iam_roles.role_arn(aws, target, "execution"),
        task_role_arn=iam_roles.role_arn(aws, target, "task"),
        log_group="/dask-aws/own",
        region="us-east-1",
    )


def test_a_role_made_here_is_deleted_without_listing_its_policies(
    local_aws_simulated: Any,
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    target = _target()
    role = iam_roles.ensure(aws, target, "execution")
    mark = log.mark()
    iam_roles.delete(aws, role)
    assert not LISTS & set(log.since(mark))
    assert iam_roles.observe(aws, target, "execution") is None


def test_a_policy_attached_behind_our_back_is_found_and_the_role_still_goes(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    target = _target()
    role = iam_roles.ensure(aws, target, "execution")
    name = role.id.rsplit("/", 1)[1]
    extra = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    aws.iam.attach_role_policy(RoleName=name, PolicyArn=extra)
    iam_roles.delete(aws, role)
    assert iam_roles.observe(aws, target, "execution") is None


def test_a_family_registered_here_is_deleted_whole_without_listing(
    local_aws_simulated: Any,
) -> None:
    aws, log = aws_for(local_aws_simulated.endpoint_url)
    target = _target()
    refs = _refs(aws, target)
    first = task_definitions.ensure(aws, target, "scheduler", refs)
    changed = Target(target.owner, DaskAwsClusterSpec(image="ghcr.io/dask/dask:2026.8.0"))
    second = task_definitions.ensure(aws, changed, "scheduler", refs)
    assert first.id != second.id
    mark = log.mark()
    task_definitions.delete(aws, second)
    assert not LISTS & set(log.since(mark))
    family = task_definitions.family(target, "scheduler")
    for status in ("ACTIVE", "INACTIVE"):
        listed = aws.ecs.list_task_definitions(familyPrefix=family, status=status)
        assert listed["taskDefinitionArns"] == [], status
