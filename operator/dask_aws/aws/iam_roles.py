"""The task execution role and the task role.

Least privilege: the execution role gets AWS's managed ECS execution policy plus read
access to exactly the secrets the spec names and the cluster's own TLS secret; the task
role gets nothing but the policies the spec lists. Roles the user brought (by ARN) are
used and never touched.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from dask_aws.aws import own_writes, tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.task_definitions import Refs
from dask_aws.errors import PermanentError

Kind = Literal["execution", "task"]
KINDS: tuple[Kind, ...] = ("execution", "task")
EXECUTION_POLICY = "policy/service-role/AmazonECSTaskExecutionRolePolicy"
SECRETS_POLICY_NAME = "dask-aws-secrets"
TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass(frozen=True)
class Desired:
    name: str
    managed_policies: frozenset[str]
    inline: dict[str, str]  # policy name -> document


def user_arn(target: Target, kind: Kind) -> str | None:
    iam = target.spec.iam
    return iam.execution_role_arn if kind == "execution" else iam.task_role_arn


def desired(aws: Aws, target: Target, kind: Kind, refs: Refs | None = None) -> Desired:
    names = target.names
    if kind == "task":
        return Desired(names.task_role, frozenset(target.spec.iam.task_role_policies), {})
    inline: dict[str, str] = {}
    tls = [refs.tls_secret] if refs is not None and refs.tls_secret else []
    secrets = sorted(set(target.spec.secrets.values()) | set(tls))
    if secrets:
        inline[SECRETS_POLICY_NAME] = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    *(
                        [
                            {
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": [s for s in secrets if ":secretsmanager:" in s],
                            }
                        ]
                        if any(":secretsmanager:" in s for s in secrets)
                        else []
                    ),
                    *(
                        [
                            {
                                "Effect": "Allow",
                                "Action": "ssm:GetParameters",
                                "Resource": [s for s in secrets if ":ssm:" in s],
                            }
                        ]
                        if any(":ssm:" in s for s in secrets)
                        else []
                    ),
                ],
            },
            sort_keys=True,
        )
    policy = f"arn:{aws.partition}:iam::aws:{EXECUTION_POLICY}"
    return Desired(names.execution_role, frozenset({policy}), inline)


def role_arn(aws: Aws, target: Target, kind: Kind) -> str:
    """The ARN the role has or will have: deterministic, so plans need no lookup."""
    return user_arn(target, kind) or (
        f"arn:{aws.partition}:iam::{aws.account_id}:role/{desired(aws, target, kind).name}"
    )


def observe(aws: Aws, target: Target, kind: Kind, refs: Refs | None = None) -> Found | None:
    given = user_arn(target, kind)
    name = given.rsplit("/", 1)[1] if given else desired(aws, target, kind).name
    try:
        role = aws.iam.get_role(RoleName=name)["Role"]
    except aws.iam.exceptions.NoSuchEntityException:
        if given:
            raise PermanentError(
                "RoleNotFound", f"iam.{kind}RoleArn {given} does not exist"
            ) from None
        return None
    if given:
        return Found(id=role["Arn"], ours=False)
    role_tags = tags.from_list(aws.iam.list_role_tags(RoleName=name)["Tags"])
    if not tags.is_owned_by(role_tags, target.owner):
        raise PermanentError("NameConflict", f"an IAM role named {name} exists and is not ours")
    want = desired(aws, target, kind, refs)
    return Found(id=role["Arn"], ours=True, in_sync=_in_sync(aws, want))


def _attached(aws: Aws, name: str) -> set[str]:
    pages = aws.iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
    return {p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]}


def _inline_names(aws: Aws, name: str) -> set[str]:
    pages = aws.iam.get_paginator("list_role_policies").paginate(RoleName=name)
    return {p for page in pages for p in page["PolicyNames"]}


def _in_sync(aws: Aws, want: Desired) -> bool:
    if _attached(aws, want.name) != set(want.managed_policies):
        return False
    if _inline_names(aws, want.name) != set(want.inline):
        return False
    for policy, document in want.inline.items():
        have = aws.iam.get_role_policy(RoleName=want.name, PolicyName=policy)["PolicyDocument"]
        if isinstance(have, str):
            have = json.loads(have)
        if json.dumps(have, sort_keys=True) != document:
            return False
    return True


def ensure(aws: Aws, target: Target, kind: Kind, refs: Refs | None = None) -> Found:
    given = user_arn(target, kind)
    if given:
        return Found(id=given, ours=False)
    want = desired(aws, target, kind, refs)
    created = True
    try:
        arn = aws.iam.create_role(
            RoleName=want.name,
            AssumeRolePolicyDocument=TRUST_POLICY,
            Description=f"dask-aws {kind} role for {target.owner.display}",
            Tags=tags.as_aws(tags.ownership(target.owner, target.spec.tags)),  # type: ignore[arg-type]
        )["Role"]["Arn"]
    except aws.iam.exceptions.EntityAlreadyExistsException:
        found = observe(aws, target, kind, refs)  # raises NameConflict when it is not ours
        assert found is not None
        arn, created = found.id, False
    # Trust our own write: a role created just now has no policies to list.
    have = set() if created else _attached(aws, want.name)
    for policy in sorted(want.managed_policies - have):
        aws.iam.attach_role_policy(RoleName=want.name, PolicyArn=policy)
    for policy in sorted(have - want.managed_policies):
        aws.iam.detach_role_policy(RoleName=want.name, PolicyArn=policy)
    inline = set() if created else _inline_names(aws, want.name)
    for policy in sorted(inline - set(want.inline)):
        aws.iam.delete_role_policy(RoleName=want.name, PolicyName=policy)
    for policy, document in want.inline.items():
        aws.iam.put_role_policy(RoleName=want.name, PolicyName=policy, PolicyDocument=document)
    own_writes.role_written(arn, want.managed_policies, want.inline)
    return Found(id=arn, ours=True)


def tag(aws: Aws, found: Found, values: Mapping[str, str]) -> None:
    aws.iam.tag_role(RoleName=found.id.rsplit("/", 1)[1], Tags=tags.as_aws(values))  # type: ignore[arg-type]


def delete(aws: Aws, found: Found) -> None:
    if not found.ours:
        return
    name = found.id.rsplit("/", 1)[1]
    known = own_writes.role_known(found.id)
    try:
        if known is not None:
            try:
                _strip(aws, name, known.managed, known.inline)
                aws.iam.delete_role(RoleName=name)
                return
            except aws.iam.exceptions.DeleteConflictException:
                pass  # a policy was attached behind our back: read them all, as below
        _strip(aws, name, _attached(aws, name), _inline_names(aws, name))
        aws.iam.delete_role(RoleName=name)
    except aws.iam.exceptions.NoSuchEntityException:
        pass
    finally:
        own_writes.role_gone(found.id)


def _strip(aws: Aws, name: str, managed: Iterable[str], inline: Iterable[str]) -> None:
    for policy in sorted(managed):
        with contextlib.suppress(aws.iam.exceptions.NoSuchEntityException):
            aws.iam.detach_role_policy(RoleName=name, PolicyArn=policy)
    for policy in sorted(inline):
        with contextlib.suppress(aws.iam.exceptions.NoSuchEntityException):
            aws.iam.delete_role_policy(RoleName=name, PolicyName=policy)
