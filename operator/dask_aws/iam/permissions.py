"""The IAM actions the engine needs, declared next to nothing else: one table, keyed by the
module that makes the calls, and the policy `dask-aws iam-policy` prints from it.

Two modes:

* ``create-all``: the engine creates and deletes the ECS cluster, both IAM roles, the
  security group and the log group (a spec that brings none of them).
* ``bring-your-own``: the spec names ``clusterArn``, ``iam.executionRoleArn`` and
  ``iam.taskRoleArn``, ``network.securityGroups`` and ``logs.group``; the engine only
  reads those, and creates nothing but the TLS secret, task definitions and tasks.

Each :class:`Need` is either *direct* (the module calls the action's own API operation:
tests/iam checks, against the local AWS with IAM enforcement, that each one is used and
that the lifecycle fails without it) or *implied* (AWS authorizes it as part of another
call: tag-on-create, iam:PassRole, the ECS service-linked role; the local AWS checks none
of these, so they rest on AWS's documentation, cited in ``why``).

Three audiences (``--for``): the ``operator`` runs the engine (dask_aws.aws, dask_aws.engine);
the Python ``library`` (FargateCluster/ECSCluster, dask_aws.cluster) runs the same engine
in the user's process and adds heartbeat tags, get_logs() and the public-IP lookup; ``gc``
(`dask-aws gc`, dask_aws.cluster.gc) runs the engine's delete and adds the listing it
finds leftovers with.
Each module's entry belongs to one audience (:func:`audience_of`); the library's and gc's
policies are the operator's plus their own entries.

tests/iam also checks that every boto3 call in a module is declared here, so a new call
without a declaration fails the tests, not a user's first reconcile.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dask_aws.aws.iam_roles import EXECUTION_POLICY
from dask_aws.aws.tags import MANAGED_BY, MANAGED_BY_VALUE
from dask_aws.names import LOG_GROUP_PREFIX, NAME_PREFIX

Mode = Literal["create-all", "bring-your-own"]
MODES: tuple[Mode, ...] = ("create-all", "bring-your-own")
BOTH: frozenset[Mode] = frozenset(MODES)
CREATE_ALL: frozenset[Mode] = frozenset({"create-all"})
BRING_YOUR_OWN: frozenset[Mode] = frozenset({"bring-your-own"})

Audience = Literal["operator", "library", "gc"]
AUDIENCES: tuple[Audience, ...] = ("operator", "library", "gc")


# API operations that need no permission at all.
NO_PERMISSION_NEEDED = {
    "sts:GetCallerIdentity": "AWS answers GetCallerIdentity for every identity; it cannot be "
    "denied (dask_aws.aws.clients: the account id in role ARNs)",
}


@dataclass(frozen=True)
class Need:
    """One IAM action one module needs."""

    action: str  # "ecs:CreateCluster"
    scope: str  # a key of SCOPES: which resources (and condition) the action is granted on
    why: str
    modes: frozenset[Mode] = BOTH
    # The API operations of the module that need it: the action's own (direct), or the
    # calls AWS authorizes it with (implied: tag-on-create, PassRole).
    operations: tuple[str, ...] = ()
    direct: bool = True

    @property
    def operation(self) -> str:
        return self.action.split(":", 1)[1]

    def calls(self) -> tuple[str, ...]:
        return self.operations or (self.operation,)


def _implied(action: str, scope: str, by: Sequence[str], why: str, modes: frozenset[Mode]) -> Need:
    return Need(action, scope, why, modes, operations=tuple(by), direct=False)


# Actions of features a lifecycle does not use unless told where: granted only on the
# resources `dask-aws iam-policy` is given. Module -> (action, why).
OPTIONAL: dict[str, tuple[tuple[str, str], ...]] = {
    "dask_aws.aws.identity": (
        (
            "sts:AssumeRole",
            "act as the role a namespace's DaskAwsPolicy names (aws.roleArn), so that "
            "namespace's clusters live in that role's account; granted only on the roles "
            "given with --tenant-role",
        ),
    ),
}

PERMISSIONS: dict[str, tuple[Need, ...]] = {
    "dask_aws.aws.network": (
        Need(
            "ec2:DescribeVpcs",
            "any",
            "check network.vpc (and, for the library without allowed_client_cidrs, the "
            "VPC's CIDR blocks)",
        ),
        Need(
            "ec2:DescribeSubnets",
            "any",
            "find the default VPC's default subnets, list network.vpc's or check network.subnets",
        ),
    ),
    "dask_aws.aws.egress": (
        Need(
            "ec2:DescribeRouteTables",
            "any",
            "read the subnets' routes: can tasks pull the image (and need a public IP)?",
        ),
        Need(
            "ec2:DescribeVpcEndpoints",
            "any",
            "read the VPC's endpoints (ECR, S3, Logs, Secrets Manager) for private subnets",
        ),
    ),
    "dask_aws.aws.ecs_cluster": (
        Need(
            "ecs:DescribeClusters",
            "cluster-ours",
            "find our cluster again by name",
            CREATE_ALL,
        ),
        Need(
            "ecs:DescribeClusters",
            "cluster-given",
            "check that clusterArn exists and is ACTIVE",
            frozenset({"bring-your-own"}),
        ),
        Need("ecs:CreateCluster", "cluster-ours", "create the cluster", CREATE_ALL),
        Need("ecs:DeleteCluster", "cluster-ours", "delete our cluster", CREATE_ALL),
        Need(
            "ecs:TagResource",
            "cluster-ours",
            "mark our cluster retained (deletionPolicy Retain); the library's heartbeat tag",
            CREATE_ALL,
        ),
        _implied(
            "ecs:TagResource",
            "ecs-tag-on-create",
            ["CreateCluster"],
            "CreateCluster carries ownership tags; ECS authorizes tag-on-create with "
            "ecs:TagResource (ECS guide: 'Grant permission to tag resources on creation')",
            CREATE_ALL,
        ),
        _implied(
            "iam:CreateServiceLinkedRole",
            "ecs-service-linked-role",
            ["CreateCluster"],
            "CreateCluster creates AWSServiceRoleForECS when the account has none yet; awsvpc "
            "tasks cannot start without it",
            CREATE_ALL,
        ),
    ),
    "dask_aws.aws.iam_roles": (
        Need("iam:GetRole", "role-ours", "find our roles again", CREATE_ALL),
        Need(
            "iam:GetRole",
            "role-given",
            "check that iam.executionRoleArn and taskRoleArn exist",
            frozenset({"bring-your-own"}),
        ),
        Need("iam:ListRoleTags", "role-ours", "check a role is ours (owner tags)", CREATE_ALL),
        Need(
            "iam:ListAttachedRolePolicies",
            "role-ours",
            "compare attached policies with the spec; detach before deleting",
            CREATE_ALL,
        ),
        Need(
            "iam:ListRolePolicies",
            "role-ours",
            "compare inline policies with the spec; delete before deleting the role",
            CREATE_ALL,
        ),
        Need(
            "iam:GetRolePolicy",
            "role-ours",
            "compare the secrets policy with the spec's secrets",
            CREATE_ALL,
        ),
        Need("iam:CreateRole", "role-ours", "create the execution and task roles", CREATE_ALL),
        _implied(
            "iam:TagRole",
            "role-ours",
            ["CreateRole"],
            "CreateRole carries ownership tags; IAM requires iam:TagRole to tag on create",
            CREATE_ALL,
        ),
        Need(
            "iam:AttachRolePolicy",
            "role-policy",
            "attach AmazonECSTaskExecutionRolePolicy and iam.taskRolePolicies",
            CREATE_ALL,
        ),
        Need(
            "iam:DetachRolePolicy",
            "role-policy",
            "detach policies the spec dropped, and all before deleting a role",
            CREATE_ALL,
        ),
        Need(
            "iam:PutRolePolicy",
            "role-ours",
            "the execution role's inline policy reading exactly the spec's secrets",
            CREATE_ALL,
        ),
        Need(
            "iam:DeleteRolePolicy",
            "role-ours",
            "remove the inline policy when secrets go, and before deleting the role",
            CREATE_ALL,
        ),
        Need("iam:DeleteRole", "role-ours", "delete our roles", CREATE_ALL),
        Need(
            "iam:TagRole",
            "role-ours",
            "mark our roles retained (deletionPolicy Retain)",
            CREATE_ALL,
        ),
    ),
    "dask_aws.aws.security_group": (
        Need(
            "ec2:DescribeSecurityGroups",
            "any",
            "find our group by name and tags, or check network.securityGroups",
        ),
        Need(
            "ec2:CreateSecurityGroup",
            "sg-create",
            "create the cluster's security group in the VPC",
            CREATE_ALL,
        ),
        _implied(
            "ec2:CreateTags",
            "sg-tag-on-create",
            ["CreateSecurityGroup"],
            "CreateSecurityGroup carries TagSpecifications; EC2 authorizes them as "
            "ec2:CreateTags with ec2:CreateAction",
            CREATE_ALL,
        ),
        Need(
            "ec2:AuthorizeSecurityGroupIngress",
            "sg-ours",
            "members talk to each other; the spec's allowed clients reach the scheduler",
            CREATE_ALL,
        ),
        Need(
            "ec2:RevokeSecurityGroupIngress",
            "sg-ours",
            "drop rules the spec no longer asks for",
            CREATE_ALL,
        ),
        Need("ec2:DeleteSecurityGroup", "sg-ours", "delete our security group", CREATE_ALL),
        Need(
            "ec2:CreateTags",
            "sg-ours",
            "mark our group retained (deletionPolicy Retain); the library's heartbeat tag",
            CREATE_ALL,
        ),
    ),
    "dask_aws.aws.log_group": (
        Need(
            "logs:DescribeLogGroups",
            "any",
            "find our log group, or check logs.group exists",
        ),
        Need("logs:ListTagsLogGroup", "log-ours", "check the log group is ours", CREATE_ALL),
        Need("logs:CreateLogGroup", "log-ours", "create the log group", CREATE_ALL),
        _implied(
            "logs:TagLogGroup",
            "log-ours",
            ["CreateLogGroup"],
            "CreateLogGroup carries ownership tags; Logs wants logs:TagResource or "
            "logs:TagLogGroup for that (CreateLogGroup API reference)",
            CREATE_ALL,
        ),
        Need(
            "logs:PutRetentionPolicy",
            "log-ours",
            "set logs.retentionDays",
            CREATE_ALL,
        ),
        Need("logs:DeleteLogGroup", "log-ours", "delete our log group", CREATE_ALL),
        Need(
            "logs:TagLogGroup",
            "log-ours",
            "mark our log group retained (deletionPolicy Retain)",
            CREATE_ALL,
        ),
    ),
    "dask_aws.aws.tls_secret": (
        Need(
            "secretsmanager:DescribeSecret",
            "secret-ours",
            "find the cluster's TLS secret and when its certificates expire (tags only)",
        ),
        Need("secretsmanager:CreateSecret", "secret-ours", "store the cluster's certificates"),
        _implied(
            "secretsmanager:TagResource",
            "secret-ours",
            ["CreateSecret"],
            "CreateSecret carries ownership tags; Secrets Manager authorizes them with "
            "secretsmanager:TagResource (CreateSecret API reference)",
            BOTH,
        ),
        Need(
            "secretsmanager:PutSecretValue",
            "secret-ours",
            "issue new certificates when tls.validityDays changes",
        ),
        Need(
            "secretsmanager:TagResource",
            "secret-ours",
            "record the new certificates' expiry; mark the secret retained (Retain)",
        ),
        Need(
            "secretsmanager:GetSecretValue",
            "secret-ours",
            "read the client certificate: to talk to the scheduler (retire workers, the "
            "adaptive target, idleness) and for the connection Secret",
        ),
        Need(
            "secretsmanager:DeleteSecret",
            "secret-ours",
            "delete the cluster's TLS secret, without a recovery window",
        ),
    ),
    "dask_aws.aws.task_definitions": (
        Need(
            "ecs:DescribeTaskDefinition",
            "any",
            "read the latest revision and its spec hash",
        ),
        Need(
            "ecs:RegisterTaskDefinition",
            "any",
            "register the scheduler and worker task definitions",
        ),
        Need(
            "ecs:ListTaskDefinitions",
            "any",
            "find older revisions of our families (ACTIVE, and INACTIVE ones to delete)",
        ),
        Need(
            "ecs:DeregisterTaskDefinition",
            "any",
            "deregister superseded revisions, and all on delete",
        ),
        Need(
            "ecs:DeleteTaskDefinitions",
            "any",
            "delete deregistered revisions so nothing is left on delete",
        ),
        Need(
            "ecs:TagResource",
            "td-ours",
            "mark our task definitions retained (deletionPolicy Retain); the library's "
            "heartbeat tag when it brings its own cluster",
        ),
        _implied(
            "ecs:TagResource",
            "ecs-tag-on-create",
            ["RegisterTaskDefinition"],
            "RegisterTaskDefinition carries ownership tags (ECS tag-on-create)",
            BOTH,
        ),
        _implied(
            "iam:PassRole",
            "pass-role",
            ["RegisterTaskDefinition"],
            "the task definitions name the execution and task roles; AWS checks "
            "iam:PassRole for them (to ecs-tasks.amazonaws.com only)",
            BOTH,
        ),
    ),
    "dask_aws.aws.tasks": (
        Need("ecs:ListTasks", "any", "find the owner's tasks by startedBy"),
        Need(
            "ecs:DescribeTasks",
            "task",
            "read the tasks' status and addresses; wait for them to stop",
        ),
        Need("ecs:RunTask", "run-task", "start the scheduler and workers (10 a call)"),
        Need("ecs:StopTask", "task", "scale down, replace, delete"),
        _implied(
            "ecs:TagResource",
            "ecs-tag-on-create",
            ["RunTask"],
            "RunTask carries ownership tags (ECS tag-on-create)",
            BOTH,
        ),
        _implied(
            "iam:PassRole",
            "pass-role",
            ["RunTask"],
            "tasks start with the task definitions' roles; AWS checks iam:PassRole for them",
            BOTH,
        ),
    ),
    # A DaskAwsJob's runner: one more task definition family and its tasks, in the
    # cluster's ECS cluster; the same actions and scopes as the cluster's own (it lists and
    # describes its attempts through aws/tasks.py).
    "dask_aws.aws.runner": (
        Need("ecs:DescribeTaskDefinition", "any", "find the runner's task definition again"),
        Need("ecs:RunTask", "run-task", "start a runner attempt (with a clientToken)"),
    ),
    # -- the Python library (FargateCluster/ECSCluster): the engine's, plus these --------
    "dask_aws.cluster.logs": (
        Need(
            "logs:GetLogEvents",
            "log-ours",
            "get_logs(): read the scheduler's and workers' log streams",
            CREATE_ALL,
        ),
        Need(
            "logs:GetLogEvents",
            "log-given",
            "get_logs(): read the scheduler's and workers' streams in logs.group",
            BRING_YOUR_OWN,
        ),
    ),
    "dask_aws.cluster.reach": (
        Need(
            "ecs:DescribeTasks",
            "task",
            "fargate_use_private_ip=False: find the scheduler task's network interface",
        ),
        Need(
            "ec2:DescribeNetworkInterfaces",
            "any",
            "fargate_use_private_ip=False only: the scheduler's public IP",
        ),
    ),
    # -- dask-aws gc: the engine's delete, plus finding leftovers by their tags ----------
    "dask_aws.cluster.gc": (
        Need("ecs:ListClusters", "any", "list the ECS clusters to find ours by their tags"),
        Need(
            "ecs:DescribeClusters",
            "cluster-all",
            "read every listed cluster's tags (include=TAGS) to find ours",
        ),
        Need(
            "ec2:DescribeSecurityGroups",
            "any",
            "find security groups by the managed-by tag",
        ),
        Need("iam:ListRoles", "role-all", f"list roles to find ours by name ({NAME_PREFIX}*)"),
        Need("iam:ListRoleTags", "role-ours", "read our roles' owner tags"),
        Need(
            "logs:DescribeLogGroups",
            "any",
            f"list the log groups under {LOG_GROUP_PREFIX}",
        ),
        Need("logs:ListTagsLogGroup", "log-ours", "read our log groups' owner tags"),
        Need(
            "ecs:ListTaskDefinitionFamilies",
            "any",
            f"list the task definition families named {NAME_PREFIX}*",
        ),
        Need(
            "secretsmanager:ListSecrets",
            "any",
            f"list the TLS secrets named {NAME_PREFIX}* with their tags",
        ),
        Need(
            "ecs:DescribeTaskDefinition",
            "any",
            "read the families' tags (include=TAGS)",
        ),
    ),
}

_LIBRARY_PREFIX = "dask_aws.cluster."
_GC_MODULE = "dask_aws.cluster.gc"


def audience_of(module: str) -> Audience:
    """Who runs `module`'s calls: the engine's modules run everywhere ("operator")."""
    # gc lives in the library's package but has its own audience: test it first.
    if module == _GC_MODULE:
        return "gc"
    if module.startswith(_LIBRARY_PREFIX):
        return "library"
    return "operator"


@dataclass(frozen=True)
class Options:
    """What `dask-aws iam-policy` lets a user narrow."""

    partition: str = "aws"
    account: str = "*"
    region: str = "*"
    # bring-your-own: the roles and clusters specs may name (default: any).
    role_arns: tuple[str, ...] = ()
    cluster_arns: tuple[str, ...] = ()
    # Managed policies specs may attach to task roles (iam.taskRolePolicies); the ECS
    # execution policy is always allowed. ("*",): any policy.
    task_role_policies: tuple[str, ...] = ()
    # Roles DaskAwsPolicies may name for their namespace (aws.roleArn); none: no AssumeRole.
    tenant_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    sid: str
    resources: tuple[str, ...]
    condition: dict[str, Any] = field(default_factory=dict)


def _scopes(mode: Mode, o: Options) -> dict[str, Scope]:
    p, r, a = o.partition, o.region, o.account
    ecs, ec2, logs = f"arn:{p}:ecs:{r}:{a}", f"arn:{p}:ec2:{r}:{a}", f"arn:{p}:logs:{r}:{a}"
    secrets = f"arn:{p}:secretsmanager:{r}:{a}:secret"
    iam = f"arn:{p}:iam::{a}"
    our_roles = (f"{iam}:role/{NAME_PREFIX}*",)
    given_roles = o.role_arns or (f"{iam}:role/*",)
    given_clusters = o.cluster_arns or (f"{ecs}:cluster/*",)
    cluster_names = (
        [f"{NAME_PREFIX}*"]
        if mode == "create-all"
        else sorted({arn.rsplit("/", 1)[-1] for arn in given_clusters})
    )
    execution_policy = f"arn:{p}:iam::aws:{EXECUTION_POLICY}"
    policies = (execution_policy, *o.task_role_policies)
    return {
        "any": Scope("NoResourceLevelPermissions", ("*",)),
        "cluster-ours": Scope("OurEcsCluster", (f"{ecs}:cluster/{NAME_PREFIX}*",)),
        "cluster-given": Scope("GivenEcsClusters", tuple(given_clusters)),
        "cluster-all": Scope("AllEcsClusters", (f"{ecs}:cluster/*",)),
        "task": Scope("Tasks", tuple(f"{ecs}:task/{name}/*" for name in cluster_names)),
        "run-task": Scope("RunOurTaskDefinitions", (f"{ecs}:task-definition/{NAME_PREFIX}*:*",)),
        "td-ours": Scope("OurTaskDefinitions", (f"{ecs}:task-definition/{NAME_PREFIX}*:*",)),
        "ecs-tag-on-create": Scope(
            "EcsTagOnCreate",
            ("*",),
            {
                "StringEquals": {
                    "ecs:CreateAction": (
                        ["CreateCluster", "RegisterTaskDefinition", "RunTask"]
                        if mode == "create-all"
                        else ["RegisterTaskDefinition", "RunTask"]
                    )
                }
            },
        ),
        "ecs-service-linked-role": Scope(
            "EcsServiceLinkedRole",
            (f"{iam}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",),
            {"StringLike": {"iam:AWSServiceName": "ecs.amazonaws.com"}},
        ),
        "role-ours": Scope("OurRoles", our_roles),
        "role-given": Scope("GivenRoles", tuple(given_roles)),
        "role-all": Scope("ListRoles", (f"{iam}:role/*",)),
        "role-policy": Scope(
            "OurRolesPolicies",
            our_roles,
            {} if "*" in policies else {"ArnEquals": {"iam:PolicyARN": list(policies)}},
        ),
        "pass-role": Scope(
            "PassRolesToEcsTasks",
            our_roles if mode == "create-all" else tuple(given_roles),
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
        "sg-create": Scope("CreateSecurityGroup", (f"{ec2}:security-group/*", f"{ec2}:vpc/*")),
        "sg-tag-on-create": Scope(
            "TagSecurityGroupOnCreate",
            (f"{ec2}:security-group/*",),
            {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
        ),
        "sg-ours": Scope(
            "OurSecurityGroup",
            (f"{ec2}:security-group/*",),
            {"StringEquals": {f"ec2:ResourceTag/{MANAGED_BY}": MANAGED_BY_VALUE}},
        ),
        "log-ours": Scope("OurLogGroup", (f"{logs}:log-group:{LOG_GROUP_PREFIX}*",)),
        "log-given": Scope("GivenLogGroups", (f"{logs}:log-group:*",)),
        "secret-ours": Scope("OurTlsSecrets", (f"{secrets}:{NAME_PREFIX}*",)),
    }


def needs(mode: Mode, audience: Audience = "operator") -> list[tuple[str, Need]]:
    """(module, need) for every declaration that applies to `mode`, for `audience`: the
    engine's modules, plus the library's or gc's own."""
    return [
        (m, n)
        for m, table in PERMISSIONS.items()
        if audience_of(m) in ("operator", audience)
        for n in table
        if mode in n.modes
    ]


def actions(mode: Mode, *, direct: bool | None = None, audience: Audience = "operator") -> set[str]:
    """The actions of `mode` (only direct or only implied ones, if asked)."""
    return {n.action for _, n in needs(mode, audience) if direct is None or n.direct == direct}


def extras(mode: Mode, audience: Audience) -> set[str]:
    """The actions `audience` needs beyond the operator's policy for `mode`."""
    return actions(mode, audience=audience) - actions(mode)


def _covers(wide: Scope, narrow: Scope) -> bool:
    """Granting on `wide` already grants everything granting on `narrow` does."""
    return not wide.condition and all(
        any(fnmatch.fnmatchcase(resource, pattern) for pattern in wide.resources)
        for resource in narrow.resources
    )


def policy(
    mode: Mode,
    options: Options | None = None,
    *,
    without: Iterable[str] = (),
    audience: Audience = "operator",
) -> dict[str, Any]:
    """The IAM policy document for `mode`; `without` drops actions (for tests)."""
    scopes = _scopes(mode, options or Options())
    dropped = set(without)
    grouped: dict[str, set[str]] = {}
    for _, need in needs(mode, audience):
        if need.action not in dropped:
            grouped.setdefault(need.scope, set()).add(need.action)
    # An action granted on a scope that covers another one is not repeated there.
    for scope in sorted(grouped):
        for action in sorted(grouped[scope]):
            for other in sorted(grouped):
                if other == scope or action not in grouped[other]:
                    continue
                mutual = _covers(scopes[scope], scopes[other])
                if _covers(scopes[other], scopes[scope]) and not (mutual and scope < other):
                    grouped[scope].discard(action)
                    break
    statements: list[dict[str, Any]] = []
    for scope in sorted(grouped, key=lambda s: (s != "any", s)):
        s = scopes[scope]
        if not grouped[scope]:
            continue
        statement: dict[str, Any] = {
            "Sid": s.sid,
            "Effect": "Allow",
            "Action": sorted(grouped[scope]),
            "Resource": list(s.resources) if len(s.resources) > 1 else s.resources[0],
        }
        if s.condition:
            statement["Condition"] = s.condition
        statements.append(statement)
    roles = (options or Options()).tenant_roles
    if roles and audience == "operator" and "sts:AssumeRole" not in dropped:
        statements.append(
            {
                "Sid": "AssumeTenantRoles",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole"],
                "Resource": list(roles) if len(roles) > 1 else roles[0],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(mode: Mode, options: Options | None = None, audience: Audience = "operator") -> str:
    return json.dumps(policy(mode, options, audience=audience), indent=2) + "\n"


def explain(mode: Mode, audience: Audience = "operator") -> list[tuple[str, str, str]]:
    """(action, module, why) for `mode`, sorted by action; implied ones say so."""
    rows = [
        (n.action, m.rsplit(".", 1)[-1], ("" if n.direct else "[implied] ") + n.why)
        for m, n in needs(mode, audience)
    ]
    return sorted(rows)
