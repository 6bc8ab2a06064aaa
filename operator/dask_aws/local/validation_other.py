"""IAM, STS and CloudWatch Logs requests AWS refuses and moto accepts, checked on the
request's own parameters (local/request_checks.py runs them before moto).

AWS's wording, where quoted, is from error output in public issue threads (named per check);
the "1 validation error detected" form is AWS's generic reply to a parameter outside its
documented constraint (the limits are the API references' own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import AccessDeniedError
from moto.iam.exceptions import MalformedPolicyDocument
from moto.iam.exceptions import ValidationError as IamValidationError
from moto.logs.exceptions import InvalidParameterException as LogsInvalidParameter
from moto.sts.exceptions import STSValidationError
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from dask_aws.local.credentials import refused_across_accounts

MAX_ROLE_NAME = 64  # API_CreateRole: RoleName, 1-64 characters
# API_AssumeRole: RoleSessionName, 2-64 characters of [\w+=,.@-]
SESSION_NAME = re.compile(r"[\w+=,.@-]*")
# API_PutRetentionPolicy: retentionInDays is one of these.
RETENTION_DAYS: tuple[int, ...] = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545)
RETENTION_DAYS += (731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def constraint(value: Any, parameter: str, rule: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{parameter}' failed to satisfy "
        f"constraint: {rule}"
    )


def create_role(request: Any) -> None:
    name = request._get_param("RoleName") or ""
    if len(name) > MAX_ROLE_NAME:
        # sbstjn/serverless-dynamodb-autoscaling#9, legion-platform/legion#530
        raise IamValidationError(
            constraint(name, "roleName", "Member must have length less than or equal to 64")
        )
    try:
        json.loads(request._get_param("AssumeRolePolicyDocument") or "")
    except ValueError as exc:
        # AWSCookbook/Security#2, aws-samples/aws-microservices-deploy-options#118
        raise MalformedPolicyDocument("This policy contains invalid Json") from exc


def assume_role(request: Any) -> None:
    name = request._get_param("RoleSessionName") or ""
    if not SESSION_NAME.fullmatch(name):
        # zalando-stups/aws-credentials-service#7, JuliaCloud/AWSCore.jl#38
        raise STSValidationError(
            constraint(
                name,
                "roleSessionName",
                r"Member must satisfy regular expression pattern: [\w+=,.@-]*",
            )
        )
    # Across accounts, the role's trust policy decides (local/credentials.py); AWS's
    # AccessDenied: "User: <caller> is not authorized to perform: sts:AssumeRole on
    # resource: <role>" (the same for a role that does not exist).
    role_arn = request._get_param("RoleArn") or ""
    account = request.current_account
    _, caller_arn, _ = sts_backends[account][get_partition(request.region)].get_caller_identity(
        request.get_access_key(), request.region
    )
    if refused_across_accounts(account, caller_arn, role_arn, request._get_param("ExternalId")):
        raise AccessDeniedError(caller_arn, f"sts:AssumeRole on resource: {role_arn}")


def put_retention_policy(request: Any) -> None:
    days = request._get_param("retentionInDays")
    if days is not None and int(days) not in RETENTION_DAYS:
        # AWS's generic constraint reply; we found no quote of it for this parameter.
        raise LogsInvalidParameter(
            constraint(
                days,
                "retentionInDays",
                f"Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]",
            )
        )


CHECKS: dict[tuple[str, str], Callable[[Any], None]] = {
    ("iam", "CreateRole"): create_role,
    ("sts", "AssumeRole"): assume_role,
    ("logs", "PutRetentionPolicy"): put_retention_policy,
}
