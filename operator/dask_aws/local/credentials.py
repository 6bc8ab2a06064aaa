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
