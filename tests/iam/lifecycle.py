"""The engine's whole lifecycle as one IAM identity, on the auth-enforcing local AWS.

`Identities` creates IAM users through an admin user; `lifecycle()` runs create, scale up
(with a security-group rule dropped), scale down, new certificates, a client reading them,
delete under deletionPolicy Retain, delete, and a leak check, stopping at the first step
that fails.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dask_aws.aws import tags, tls_secret
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.aws.iam_roles import TRUST_POLICY
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from dask_aws.errors import ACCESS_DENIED
from dask_aws.iam import permissions
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec, DeletionPolicy

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
TASK_ROLE_POLICY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dask-token-AbCdEf"
# What the policy is printed with for the create-all lifecycle (its spec attaches this).
OPTIONS = {
    "create-all": permissions.Options(task_role_policies=(TASK_ROLE_POLICY,)),
    "bring-your-own": permissions.Options(),
}


def session(key: Any) -> boto3.Session:
    """A session for an access key (a CreateAccessKey reply), or the bootstrap one."""
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"] if key else "bootstrap",
        aws_secret_access_key=key["SecretAccessKey"] if key else "bootstrap",
        region_name=REGION,
    )


class Identities:
    """IAM users on the local AWS: `admin` (everything), then any number with one policy."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        # Before enable_auth(): anything goes, so the bootstrap identity makes the admin.
        bootstrap = session(None).client("iam", endpoint_url=endpoint)
        bootstrap.create_user(UserName="admin")
        bootstrap.put_user_policy(
            UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN_POLICY)
        )
        self.admin_key = bootstrap.create_access_key(UserName="admin")["AccessKey"]
        self.admin = Aws(session(self.admin_key), REGION, endpoint_url=endpoint)

    def user(self, name: str, document: dict[str, Any]) -> boto3.Session:
        """A new IAM user holding exactly `document`, as a customer managed policy."""
        iam = self.admin.iam
        arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"][
            "Arn"
        ]
        iam.create_user(UserName=name)
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
        return session(iam.create_access_key(UserName=name)["AccessKey"])


@dataclass(frozen=True)
class Brought:
    """What a bring-your-own spec names, made by the admin."""

    cluster_arn: str
    execution_role_arn: str
    task_role_arn: str
    security_group: str
    log_group: str
    vpc: str

    @classmethod
    def create(cls, admin: Aws) -> Brought:
        cluster = admin.ecs.create_cluster(clusterName="team-cluster")["cluster"]["clusterArn"]
        roles = [
            admin.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)["Role"][
                "Arn"
            ]
            for name in ("team-exec", "team-task")
        ]
        vpcs = admin.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
        vpc = vpcs["Vpcs"][0]["VpcId"]
        group = admin.ec2.create_security_group(
            GroupName="team-dask", Description="team", VpcId=vpc
        )["GroupId"]
        admin.logs.create_log_group(logGroupName="/team/dask")
        return cls(cluster, roles[0], roles[1], group, "/team/dask", vpc)

    def spec(self) -> dict[str, Any]:
        return {
            "cluster_arn": self.cluster_arn,
            "iam": {
                "execution_role_arn": self.execution_role_arn,
                "task_role_arn": self.task_role_arn,
            },
            "network": {"vpc": self.vpc, "security_groups": [self.security_group]},
            "logs": {"group": self.log_group},
        }

    def intact(self, admin: Aws) -> bool:
        clusters = admin.ecs.describe_clusters(clusters=[self.cluster_arn])["clusters"]
        for arn in (self.execution_role_arn, self.task_role_arn):
            admin.iam.get_role(RoleName=arn.rsplit("/", 1)[1])
        admin.ec2.describe_security_groups(GroupIds=[self.security_group])
        groups = admin.logs.describe_log_groups(logGroupNamePrefix=self.log_group)["logGroups"]
        return bool(clusters and clusters[0]["status"] == "ACTIVE" and groups)


@dataclass
class Run:
    calls: list[str] = field(default_factory=list)  # "service:Operation", in order
    denied: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # the steps that passed
    failed: str | None = None  # "step: why" of the first step that failed
    seconds: float = 0.0


class _Recorder:
    def __init__(self, boto: boto3.Session, run: Run) -> None:
        self.run = run
        boto.events.register("before-call", self.before)
        boto.events.register("after-call", self.after)

    @staticmethod
    def _name(model: Any) -> str:
        prefix = model.service_model.signing_name
        return f"{prefix}:{model.name}"

    def before(self, model: Any, **_: Any) -> None:
        self.run.calls.append(self._name(model))

    def after(self, model: Any, parsed: Any, **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") in ACCESS_DENIED:
            self.run.denied.append(self._name(model))


def _target(owner: Owner, spec: dict[str, Any]) -> Target:
    return Target(owner, DaskAwsClusterSpec.model_validate(spec))


def _changed(tgt: Target, **updates: Any) -> Target:
    spec = tgt.spec
    if "replicas" in updates:
        workers = spec.workers.model_copy(update={"replicas": updates.pop("replicas")})
        spec = spec.model_copy(update={"workers": workers})
    if "validity_days" in updates:
        tls = spec.tls.model_copy(update={"validity_days": updates.pop("validity_days")})
        spec = spec.model_copy(update={"tls": tls})
    if "cidrs" in updates:
        network = spec.network.model_copy(update={"allowed_client_cidrs": updates.pop("cidrs")})
        spec = spec.model_copy(update={"network": network})
    return Target(tgt.owner, spec.model_copy(update=updates))


def _converge(aws: Aws, tgt: Target, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = reconcile(aws, tgt)
        if result.error is not None:
            raise StepFailed(result.error.message)
        if result.ready:
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"not Ready after {timeout}s: {result.status.message}")
        time.sleep(0.1)


def _client_credentials(boto: boto3.Session, endpoint: str, tgt: Target) -> None:
    """What a client that did not create the cluster does (the operator after a restart,
    writing the connection Secret): read the client certificate from the TLS secret."""
    fresh = Aws(boto, REGION, endpoint_url=endpoint)  # knows no secret value yet
    try:
        found = tls_secret.observe(fresh, tgt)
        if found is None:
            raise StepFailed("the TLS secret is missing")
        key = tls_secret.bundle(fresh, found.id).client_key
    except ClientError as exc:
        raise StepFailed(str(exc)) from exc
    if "BEGIN PRIVATE KEY" not in key:
        raise StepFailed("the TLS secret holds no client key")


def _delete(aws: Aws, tgt: Target) -> None:
    result = delete(aws, tgt)
    if not result.done:
        raise StepFailed(result.error.message if result.error else "not done")


class StepFailed(Exception):
    pass


def _leftovers(admin: Aws, tgt: Target) -> list[str]:
    """What of this owner's still exists: found by its deterministic names, owner tag and
    startedBy (not by scanning everything: other lifecycles run alongside)."""
    names, uid = tgt.names, tgt.owner.uid
    left: list[str] = []
    clusters = admin.ecs.list_clusters()["clusterArns"]
    for cluster in clusters:
        left += admin.ecs.list_tasks(cluster=cluster, startedBy=uid)["taskArns"]
    described = admin.ecs.describe_clusters(clusters=[names.ecs_cluster])["clusters"]
    left += [c["clusterArn"] for c in described if c.get("status") == "ACTIVE"]
    for role in (names.execution_role, names.task_role):
        with contextlib.suppress(admin.iam.exceptions.NoSuchEntityException):
            left.append(admin.iam.get_role(RoleName=role)["Role"]["Arn"])
    groups = admin.ec2.describe_security_groups(
        Filters=[{"Name": f"tag:{tags.OWNER_UID}", "Values": [uid]}]
    )["SecurityGroups"]
    left += [g["GroupId"] for g in groups]
    with contextlib.suppress(admin.secretsmanager.exceptions.ResourceNotFoundException):
        left.append(admin.secretsmanager.describe_secret(SecretId=names.tls_secret)["ARN"])
    logs = admin.logs.describe_log_groups(logGroupNamePrefix=names.log_group)["logGroups"]
    left += [g["logGroupName"] for g in logs if g["logGroupName"] == names.log_group]
    for family in (names.scheduler_family, names.worker_family):
        for status in ("ACTIVE", "INACTIVE"):
            arns = admin.ecs.list_task_definitions(familyPrefix=family, status=status)
            left += [a for a in arns["taskDefinitionArns"] if f"/{family}:" in a]
    return left


def _no_leak(admin: Aws, tgt: Target, brought: Brought | None) -> None:
    left = _leftovers(admin, tgt)
    if left:
        raise StepFailed(f"left behind: {left}")
    if brought is not None and not brought.intact(admin):
        raise StepFailed("a resource the spec brought was changed or deleted")


def lifecycle(
    mode: permissions.Mode,
    boto: boto3.Session,
    endpoint: str,
    admin: Aws,
    brought: Brought,
) -> Run:
    """create -> scale up -> scale down -> delete (Retain) -> delete -> no leak."""
    run = Run()
    _Recorder(boto, run)
    aws = Aws(boto, REGION, endpoint_url=endpoint)
    owner = Owner(uid=str(uuid.uuid4()), name="iam", namespace="team-a")
    spec: dict[str, Any] = {
        "workers": {"replicas": 1, "cpu": 1024, "memory": 2048},
        "secrets": {"DASK_TOKEN": SECRET},
    }
    if mode == "create-all":
        spec["iam"] = {"task_role_policies": [TASK_ROLE_POLICY]}
        # The VPC named (a spec without one reads only DescribeSubnets, a subset): both
        # policies must let users name theirs.
        spec["network"] = {"vpc": brought.vpc, "allowed_client_cidrs": ["10.0.0.0/8"]}
    else:
        spec |= brought.spec()
    tgt = _target(owner, spec)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("create", lambda: _converge(aws, tgt)),
        ("scale up", lambda: _converge(aws, _changed(tgt, replicas=3, cidrs=[]))),
        ("scale down", lambda: _converge(aws, _changed(tgt, replicas=1, cidrs=[]))),
        (
            "new certificates",
            lambda: _converge(aws, _changed(tgt, replicas=1, cidrs=[], validity_days=30)),
        ),
        ("client credentials", lambda: _client_credentials(boto, endpoint, tgt)),
        (
            "delete (Retain)",
            lambda: _delete(aws, _changed(tgt, deletion_policy=DeletionPolicy.RETAIN)),
        ),
        ("delete", lambda: _delete(aws, tgt)),
        ("no leak", lambda: _no_leak(admin, tgt, brought if mode == "bring-your-own" else None)),
    ]
    started = time.monotonic()
    for name, step in steps:
        try:
            step()
        except StepFailed as exc:
            run.failed = f"{name}: {exc}"
            break
        run.steps.append(name)
    run.seconds = time.monotonic() - started
    return run
