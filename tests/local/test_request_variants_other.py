"""EC2, IAM, Logs, Secrets Manager, SSM and STS requests AWS accepts are accepted by the
local AWS, and those AWS refuses are refused with AWS's error code and wording (issue 13).

Rows as in test_request_variants_ecs.py: (name, service, operation, arguments, expected
error or None, check of the response). "$..." strings in the arguments name resources
made for the row (see `Resources`). Where we found no quote of AWS's wording the fragment is
"" (code only) and the row says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dask_aws.aws.iam_roles import TRUST_POLICY as TRUST
from dask_aws.local import LocalAws
from tests.fixtures.local_aws import boto_session
from tests.local.helpers import unique

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
TCP = {"IpProtocol": "tcp", "FromPort": 8786, "ToPort": 8787}
SELF = {**TCP, "UserIdGroupPairs": [{"GroupId": "$group"}]}
ANYWHERE = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
TAGS = [{"Key": "team", "Value": "dask"}]
UNKNOWN_SUBNET = "subnet-0123456789abcdef0"


@dataclass(frozen=True)
class Row:
    name: str
    service: str
    operation: str
    args: dict[str, Any]
    error: tuple[str, str] | None = None  # (code, fragment of AWS's message)
    check: Callable[[dict[str, Any]], bool] | None = None


def R(
    name: str,
    op: str,
    args: dict[str, Any],
    error: tuple[str, str] | None = None,
    check: Callable[[dict[str, Any]], bool] | None = None,
) -> Row:
    """A row: `op` is "service:operation"."""
    service, operation = op.split(":")
    return Row(name, service, operation, args, error, check)


# fmt: off
ROWS: list[Row] = [
    # -- EC2 -------------------------------------------------------------------------------
    R("sg-create-with-tags", "ec2:create_security_group", {"GroupName": "$new",
      "Description": "d", "TagSpecifications": [{"ResourceType": "security-group",
      "Tags": TAGS}]}, check=lambda r: r["GroupId"].startswith("sg-")),
    R("sg-create-in-default-vpc", "ec2:create_security_group", {"GroupName": "$new",
      "Description": "d", "VpcId": "$vpc"}),
    R("sg-duplicate-name", "ec2:create_security_group", {"GroupName": "$group_name",
      "Description": "d", "VpcId": "$vpc"}, ("InvalidGroup.Duplicate", "already exists")),
    R("sg-ingress-from-self", "ec2:authorize_security_group_ingress", {"GroupId": "$group",
      "IpPermissions": [SELF]}),
    R("sg-ingress-cidr", "ec2:authorize_security_group_ingress", {"GroupId": "$group",
      "IpPermissions": [{**TCP, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "x"}]}]}),
    R("sg-ingress-duplicate", "ec2:authorize_security_group_ingress", {"GroupId": "$open",
      "IpPermissions": [ANYWHERE]}, ("InvalidPermission.Duplicate", "already exists")),
    R("sg-ingress-unknown-group", "ec2:authorize_security_group_ingress", {
      "GroupId": "sg-0123456789abcdef0", "IpPermissions": [ANYWHERE]},
      ("InvalidGroup.NotFound", "does not exist")),
    R("sg-egress-cidr", "ec2:authorize_security_group_egress", {"GroupId": "$group",
      "IpPermissions": [{**TCP, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
    R("sg-egress-duplicate-default", "ec2:authorize_security_group_egress", {
      "GroupId": "$group", "IpPermissions": [ANYWHERE]},
      ("InvalidPermission.Duplicate", "already exists")),
    R("sg-revoke-default-egress", "ec2:revoke_security_group_egress", {"GroupId": "$group",
      "IpPermissions": [ANYWHERE]}),
    R("sg-delete-unknown", "ec2:delete_security_group", {"GroupId": "sg-0123456789abcdef0"},
      ("InvalidGroup.NotFound", "does not exist")),
    R("describe-subnets-default-for-az", "ec2:describe_subnets", {"Filters": [
      {"Name": "default-for-az", "Values": ["true"]}]}, check=lambda r: len(r["Subnets"]) >= 1),
    R("describe-subnets-unknown", "ec2:describe_subnets", {"SubnetIds": [UNKNOWN_SUBNET]},
      ("InvalidSubnetID.NotFound", "does not exist")),
    R("describe-vpcs-default", "ec2:describe_vpcs", {"Filters": [{"Name": "isDefault",
      "Values": ["true"]}]}, check=lambda r: len(r["Vpcs"]) == 1),
    R("describe-vpcs-unknown", "ec2:describe_vpcs", {"VpcIds": ["vpc-0123456789abcdef0"]},
      ("InvalidVpcID.NotFound", "does not exist")),
    # -- IAM -------------------------------------------------------------------------------
    R("role-create-with-tags", "iam:create_role", {"RoleName": "$new",
      "AssumeRolePolicyDocument": TRUST, "Tags": TAGS, "Description": "d",
      "MaxSessionDuration": 7200}, check=lambda r: r["Role"]["MaxSessionDuration"] == 7200),
    R("role-create-path", "iam:create_role", {"RoleName": "$new", "Path": "/dask/",
      "AssumeRolePolicyDocument": TRUST}),
    R("role-name-65-chars", "iam:create_role", {"RoleName": "r" * 65,
      "AssumeRolePolicyDocument": TRUST},
      ("ValidationError", "Member must have length less than or equal to 64")),
    R("role-duplicate", "iam:create_role", {"RoleName": "$role",
      "AssumeRolePolicyDocument": TRUST}, ("EntityAlreadyExists", "already exists")),
    R("role-malformed-trust", "iam:create_role", {"RoleName": "$new",
      "AssumeRolePolicyDocument": "{not json"},
      ("MalformedPolicyDocument", "This policy contains invalid Json")),
    R("role-inline-policy", "iam:put_role_policy", {"RoleName": "$role", "PolicyName": "p",
      "PolicyDocument": POLICY}),
    R("role-inline-policy-malformed", "iam:put_role_policy", {"RoleName": "$role",
      "PolicyName": "p", "PolicyDocument": "{}"}, ("MalformedPolicyDocument", "")),
    R("role-attach-aws-managed", "iam:attach_role_policy", {"RoleName": "$role",
      "PolicyArn": EXECUTION_POLICY}),
    R("role-attach-unknown-policy", "iam:attach_role_policy", {"RoleName": "$role",
      "PolicyArn": "arn:aws:iam::aws:policy/NoSuchPolicy"}, ("NoSuchEntity", "")),
    R("role-tag", "iam:tag_role", {"RoleName": "$role", "Tags": TAGS}),
    R("role-delete-with-inline-policy", "iam:delete_role", {"RoleName": "$role_with_policy"},
      ("DeleteConflict", "Cannot delete entity, must delete policies first")),
    R("role-get-unknown", "iam:get_role", {"RoleName": "no-such-role-x"}, ("NoSuchEntity", "")),
    # -- Logs ------------------------------------------------------------------------------
    R("log-group-create", "logs:create_log_group", {"logGroupName": "$new"}),
    R("log-group-create-with-tags", "logs:create_log_group", {"logGroupName": "$new",
      "tags": {"team": "dask"}}),
    R("log-group-duplicate", "logs:create_log_group", {"logGroupName": "$log_group"},
      ("ResourceAlreadyExistsException", "The specified log group already exists")),
    R("log-retention-7", "logs:put_retention_policy", {"logGroupName": "$log_group",
      "retentionInDays": 7}),
    # Not one of PutRetentionPolicy's values; AWS's message not quoted anywhere we found.
    R("log-retention-8", "logs:put_retention_policy", {"logGroupName": "$log_group",
      "retentionInDays": 8}, ("InvalidParameterException", "")),
    R("log-tag", "logs:tag_log_group", {"logGroupName": "$log_group", "tags": {"a": "b"}}),
    R("log-tag-resource", "logs:tag_resource", {"resourceArn": "$log_group_arn",
      "tags": {"a": "b"}}),
    R("log-group-delete", "logs:delete_log_group", {"logGroupName": "$log_group"}),
    R("log-group-delete-unknown", "logs:delete_log_group", {"logGroupName": "no-such-x"},
      ("ResourceNotFoundException", "The specified log group does not exist")),
    # -- Secrets Manager -------------------------------------------------------------------
    R("secret-create-with-tags", "secretsmanager:create_secret", {"Name": "$new",
      "SecretString": "s", "Tags": TAGS, "Description": "d"}),
    R("secret-duplicate", "secretsmanager:create_secret", {"Name": "$secret",
      "SecretString": "s"}, ("ResourceExistsException", "already exists")),
    R("secret-put-value", "secretsmanager:put_secret_value", {"SecretId": "$secret",
      "SecretString": "t"}, check=lambda r: bool(r["VersionId"])),
    R("secret-get-value", "secretsmanager:get_secret_value", {"SecretId": "$secret"},
      check=lambda r: r["SecretString"] == "s"),
    R("secret-get-unknown", "secretsmanager:get_secret_value", {"SecretId": "no-such-x"},
      ("ResourceNotFoundException", "Secrets Manager can't find the specified secret")),
    R("secret-tag", "secretsmanager:tag_resource", {"SecretId": "$secret", "Tags": TAGS}),
    R("secret-delete-force", "secretsmanager:delete_secret", {"SecretId": "$secret",
      "ForceDeleteWithoutRecovery": True}),
    R("secret-delete-recovery-7", "secretsmanager:delete_secret", {"SecretId": "$secret",
      "RecoveryWindowInDays": 7}, check=lambda r: "DeletionDate" in r),
    R("secret-delete-force-and-window", "secretsmanager:delete_secret", {"SecretId": "$secret",
      "ForceDeleteWithoutRecovery": True, "RecoveryWindowInDays": 7},
      ("InvalidParameterException", "ForceDeleteWithoutRecovery in conjunction with")),
    R("secret-delete-recovery-6", "secretsmanager:delete_secret", {"SecretId": "$secret",
      "RecoveryWindowInDays": 6}, ("InvalidParameterException", "between 7 and 30 days")),
    # -- SSM -------------------------------------------------------------------------------
    R("param-string", "ssm:put_parameter", {"Name": "$new_path", "Value": "v",
      "Type": "String"}),
    R("param-secure-with-tags", "ssm:put_parameter", {"Name": "$new_path", "Value": "v",
      "Type": "SecureString", "Tags": TAGS}),
    R("param-overwrite", "ssm:put_parameter", {"Name": "$param", "Value": "w",
      "Overwrite": True}, check=lambda r: r["Version"] == 2),
    R("param-exists", "ssm:put_parameter", {"Name": "$param", "Value": "w", "Type": "String"},
      ("ParameterAlreadyExists", "")),
    R("param-overwrite-with-tags", "ssm:put_parameter", {"Name": "$param", "Value": "w",
      "Overwrite": True, "Tags": TAGS}, ("ValidationException", "tags and overwrite can't be")),
    R("param-get-decrypted", "ssm:get_parameter", {"Name": "$param", "WithDecryption": True},
      check=lambda r: r["Parameter"]["Value"] == "v"),
    R("param-get-unknown", "ssm:get_parameter", {"Name": "/no/such/x"}, ("ParameterNotFound", "")),
    R("param-by-path", "ssm:get_parameters_by_path", {"Path": "$param_path",
      "Recursive": True}, check=lambda r: len(r["Parameters"]) == 1),
    R("param-delete-unknown", "ssm:delete_parameter", {"Name": "/no/such/x"},
      ("ParameterNotFound", "")),
    # -- STS -------------------------------------------------------------------------------
    R("caller-identity", "sts:get_caller_identity", {},
      check=lambda r: r["Account"] == "123456789012"),
    R("assume-role", "sts:assume_role", {"RoleArn": "$role_arn", "RoleSessionName": "dask",
      "DurationSeconds": 900}, check=lambda r: bool(r["Credentials"]["SessionToken"])),
    R("assume-role-bad-session-name", "sts:assume_role", {"RoleArn": "$role_arn",
      "RoleSessionName": "bad name"},
      ("ValidationError", "Member must satisfy regular expression pattern")),
]


class Resources:
    """The resources a row's "$..." placeholders name, made on first use."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.made: dict[str, str] = {}

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def resolve(self, key: str) -> str:
        if key not in self.made:
            self.made[key] = self.make(key)
        return self.made[key]

    def make(self, key: str) -> str:
        ec2, iam = self.client("ec2"), self.client("iam")
        name = unique("variant")
        if key in ("$new", "$new_path"):
            return name if key == "$new" else f"/dask/{name}"
        if key == "$vpc":
            return str(ec2.describe_vpcs()["Vpcs"][0]["VpcId"])
        if key == "$open":
            group = ec2.create_security_group(GroupName=name, Description="d")["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[ANYWHERE])
            return str(group)
        if key in ("$group", "$group_name"):
            vpc = self.resolve("$vpc")
            group = ec2.create_security_group(GroupName=name, Description="d", VpcId=vpc)
            self.made["$group_name"] = name
            self.made["$group"] = str(group["GroupId"])
            return self.made[key]
        if key in ("$role", "$role_arn", "$role_with_policy"):
            role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]
            if key == "$role_with_policy":
                iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=POLICY)
            return str(role["Arn"] if key == "$role_arn" else name)
        if key in ("$log_group", "$log_group_arn"):
            logs = self.client("logs")
            logs.create_log_group(logGroupName=name)
            group = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
            return name if key == "$log_group" else str(group["arn"]).removesuffix(":*")
        if key == "$secret":
            self.client("secretsmanager").create_secret(Name=name, SecretString="s")
            return name
        if key in ("$param", "$param_path"):
            path = f"/dask/{name}"
            self.client("ssm").put_parameter(Name=f"{path}/p", Value="v", Type="SecureString")
            self.made["$param_path"] = path
            return f"{path}/p" if key == "$param" else path
        raise KeyError(key)

    def substitute(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return self.resolve(value)
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        return value


@pytest.fixture(scope="module")
def session(local_aws_simulated: LocalAws) -> boto3.Session:
    return boto_session(local_aws_simulated)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_request_variant(session: boto3.Session, row: Row) -> None:
    resources = Resources(session)
    args = resources.substitute(row.args)
    method = getattr(session.client(row.service), row.operation)
    if row.error is None:
        response = method(**args)
        assert row.check is None or row.check(response), response
        return
    with pytest.raises(ClientError) as exc:
        method(**args)
    details: dict[str, Any] = exc.value.response["Error"]
    message = str(details.get("Message", ""))
    assert details["Code"] == row.error[0], message
    assert row.error[1] in message
