"""Task-role credentials, as the ECS agent hands them to a task's containers.

The agent assumes the task definition's `taskRoleArn` (session name: the task ID, as on
AWS) and serves the temporary credentials; here the local STS (moto's backend, in this
process) issues them, so the local IAM, when it enforces, judges calls from a task by the
task role's policies. Call with the shared lock held: moto's backends are not thread-safe.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

ECS_TASKS = "ecs-tasks.amazonaws.com"
# What RunTask says on AWS when the role cannot be assumed for the task.
UNABLE_TO_ASSUME = (
    "ECS was unable to assume the role '{arn}' that was provided for this task. Please verify "
    "that the role being passed has the proper trust relationship and permissions and that "
    "your IAM user has permissions to pass this role."
)


class TaskRoleError(Exception):
    """The task role does not exist or does not trust ecs-tasks.amazonaws.com."""


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    token: str
    expiration: datetime.datetime
    role_arn: str

    def document(self) -> dict[str, str]:
        """The container credentials provider's JSON (what botocore's ContainerProvider reads)."""
        return {
            "RoleArn": self.role_arn,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "Expiration": self.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def seconds_left(self, now: datetime.datetime) -> float:
        return (self.expiration - now).total_seconds()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def trusts_ecs_tasks(document: str | dict[str, Any]) -> bool:
    """Whether a trust policy lets ECS tasks assume the role (conditions are not evaluated)."""
    policy = json.loads(document) if isinstance(document, str) else document
    for statement in _as_list(policy.get("Statement") or []):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = {str(a).lower() for a in _as_list(statement.get("Action") or [])}
        if not actions & {"sts:assumerole", "sts:*", "*"}:
            continue
        principal = statement.get("Principal")
        if principal == "*":
            return True
        if isinstance(principal, dict) and ECS_TASKS in _as_list(principal.get("Service") or []):
            return True
    return False


def assume_task_role(role_arn: str, task_id: str, region: str, duration: int) -> RoleCredentials:
    """AssumeRole of `role_arn` for a task, by the local STS. Lock held."""
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        raise TaskRoleError(UNABLE_TO_ASSUME.format(arn=role_arn))
    partition = get_partition(region)
    try:
        role = iam_backends[parts[4]][partition].get_role_by_arn(role_arn)
    except Exception as exc:  # moto raises IAMNotFoundException
        raise TaskRoleError(UNABLE_TO_ASSUME.format(arn=role_arn)) from exc
    try:
        trusted = trusts_ecs_tasks(role.assume_role_policy_document)
    except (TypeError, ValueError):
        trusted = False
    if not trusted:
        raise TaskRoleError(UNABLE_TO_ASSUME.format(arn=role_arn))
    assumed = sts_backends[parts[4]][partition].assume_role(
        region_name=region,
        role_session_name=task_id,
        role_arn=role_arn,
        policy="",
        duration=duration,
        external_id="",
    )
    return RoleCredentials(
        access_key_id=assumed.access_key_id,
        secret_access_key=assumed.secret_access_key,
        token=assumed.session_token,
        expiration=assumed.expiration.replace(tzinfo=datetime.UTC),
        role_arn=role_arn,
    )


# -- AssumeRole across accounts ----------------------------------------------------------------
# moto's STS hands out credentials for any role ARN, in any account, whatever the role's trust
# policy says (the role need not even exist). Across accounts the local AWS judges the request
# as AWS does, before moto answers: the role must exist in its account and its trust policy
# must allow the caller (its account, `arn:aws:iam::<account>:root`, or the caller's own ARN)
# with a matching `sts:ExternalId` condition when it has one. Other condition keys are not
# evaluated. Within one account moto's behaviour is kept.
def _caller_names(caller_account: str, caller_arn: str) -> set[str]:
    """What a trust policy's `Principal.AWS` may say to name this caller."""
    names = {"*", caller_account, f"arn:aws:iam::{caller_account}:root", caller_arn}
    # An assumed-role session is also named by its role's ARN.
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("assumed-role/"):
        role_name = parts[5].split("/")[1]
        names.add(f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}")
    return names


def _external_id_ok(condition: Any, external_id: str | None) -> bool:
    if not isinstance(condition, dict):
        return True
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            continue
        for key, expected in tests.items():
            if str(key).lower() != "sts:externalid":
                continue  # not evaluated here
            wanted = [str(v) for v in _as_list(expected)]
            op = str(operator).lower()
            if op == "stringequals":
                met = external_id in wanted
            elif op == "stringequalsignorecase":
                met = external_id is not None and external_id.lower() in {w.lower() for w in wanted}
            elif op == "stringlike":
                met = external_id is not None and any(fnmatchcase(external_id, w) for w in wanted)
            else:
                continue  # another operator on sts:ExternalId: not evaluated here
            if not met:
                return False
    return True


def _statement_applies(statement: Any, names: set[str], external_id: str | None) -> bool:
    if not isinstance(statement, dict):
        return False
    actions = {str(a).lower() for a in _as_list(statement.get("Action") or [])}
    if not actions & {"sts:assumerole", "sts:*", "*"}:
        return False
    principal = statement.get("Principal")
    if principal == "*":
        named = True
    elif isinstance(principal, dict):
        named = any(str(p) in names for p in _as_list(principal.get("AWS") or []))
    else:
        named = False
    return named and _external_id_ok(statement.get("Condition"), external_id)


def trust_allows(
    document: str | dict[str, Any], caller_account: str, caller_arn: str, external_id: str | None
) -> bool:
    """Whether a role's trust policy lets this caller (of another account) assume the role."""
    try:
        policy = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return False
    if not isinstance(policy, dict):
        return False
    names = _caller_names(caller_account, caller_arn)
    statements = _as_list(policy.get("Statement") or [])
    if any(
        s.get("Effect") == "Deny" and _statement_applies(s, names, external_id)
        for s in statements
        if isinstance(s, dict)
    ):
        return False
    return any(
        s.get("Effect") == "Allow" and _statement_applies(s, names, external_id)
        for s in statements
        if isinstance(s, dict)
    )


def refused_across_accounts(
    caller_account: str, caller_arn: str, role_arn: str, external_id: str | None
) -> bool:
    """Whether AWS would refuse (AccessDenied) this caller AssumeRole of `role_arn` in another
    account; False too when the role is in the caller's own account (moto decides). Lock
    held."""
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[4] or parts[4] == caller_account:
        return False
    if parts[4] not in iam_backends:
        return True  # an account nobody has used yet has no roles
    try:
        role = iam_backends[parts[4]][parts[1] or "aws"].get_role_by_arn(role_arn)
    except Exception:  # moto raises IAMNotFoundException; AWS says AccessDenied
        return True
    return not trust_allows(
        role.assume_role_policy_document, caller_account, caller_arn, external_id
    )
