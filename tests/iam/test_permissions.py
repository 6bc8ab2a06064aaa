"""The permission table against the code it describes, and `dask-aws iam-policy` output."""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from dask_aws.iam import permissions
from dask_aws.names import LOG_GROUP_PREFIX, NAME_PREFIX, Owner, ResourceNames

PACKAGE = Path(permissions.__file__).resolve().parents[1]
# The engine: the AWS resource modules and the steps that call them; the Python library
# and `dask-aws gc` (cluster/) call AWS too.
ENGINE_DIRS = ("aws", "engine", "cluster")
SERVICES = ("ecs", "ec2", "iam", "logs", "secretsmanager", "sts")
MANAGED_POLICY_LIMIT = 6144  # characters, whitespace not counted (IAM quota)


@functools.cache
def _client(service: str) -> Any:
    make: Any = boto3.client  # any service name, not only the stubs' literals
    return make(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _operation(service: str, method: str, argument: str | None) -> str:
    client = _client(service)
    if method == "get_waiter":
        assert argument is not None
        return f"{service}:{client.get_waiter(argument).config.operation}"
    name = argument if method == "get_paginator" else method
    return f"{service}:{client.meta.method_to_api_mapping[name]}"


def calls_in(path: Path) -> set[str]:
    """Every AWS API operation a module calls through `aws.<service>`, `self.<service>` or
    a variable named for the service (`sts.assume_role`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if (
            isinstance(owner, ast.Attribute)
            and owner.attr in SERVICES
            and isinstance(owner.value, ast.Name)
            and owner.value.id in ("aws", "self")
        ):
            service = owner.attr
        elif isinstance(owner, ast.Name) and owner.id in SERVICES:
            service = owner.id  # a client held in a variable named for its service
        else:
            continue
        argument = None
        if node.func.attr in ("get_paginator", "get_waiter"):
            first = node.args[0]
            assert isinstance(first, ast.Constant), ast.unparse(node)
            argument = str(first.value)
        found.add(_operation(service, node.func.attr, argument))
    return found


def engine_modules() -> dict[str, Path]:
    return {
        f"dask_aws.{d}.{p.stem}": p
        for d in ENGINE_DIRS
        for p in sorted((PACKAGE / d).glob("*.py"))
        if p.stem != "__init__"
    }


def test_every_engine_call_is_declared_in_its_module_entry() -> None:
    undeclared: list[str] = []
    unused: list[str] = []
    scanned = 0
    for module, path in engine_modules().items():
        calls = calls_in(path) - set(permissions.NO_PERMISSION_NEEDED)
        scanned += len(calls)
        declared = {n.action for n in permissions.PERMISSIONS.get(module, ()) if n.direct}
        optional = {action for action, _ in permissions.OPTIONAL.get(module, ())}
        undeclared += [f"{module}: {c}" for c in sorted(calls - declared - optional)]
        unused += [f"{module}: {c}" for c in sorted(declared - calls)]
    assert undeclared == [], "add these to dask_aws.iam.permissions.PERMISSIONS"
    assert unused == [], "declared but never called by that module"
    assert scanned >= 45  # the scan sees the calls (guards against a silently empty scan)
    # Every module with an entry exists, and the library's and gc's are scanned.
    assert set(permissions.PERMISSIONS) <= set(engine_modules())
    for module in ("dask_aws.cluster.logs", "dask_aws.cluster.gc"):
        assert calls_in(engine_modules()[module]), module


def test_audiences() -> None:
    assert permissions.audience_of("dask_aws.aws.tasks") == "operator"
    assert permissions.audience_of("dask_aws.engine.delete") == "operator"
    assert permissions.audience_of("dask_aws.cluster.logs") == "library"
    assert permissions.audience_of("dask_aws.cluster.gc") == "gc"
    for mode in permissions.MODES:
        operator = permissions.actions(mode)
        others: tuple[permissions.Audience, ...] = ("library", "gc")
        for audience in others:
            assert operator < permissions.actions(mode, audience=audience)
        assert permissions.extras(mode, "library") == {
            "logs:GetLogEvents",
            "ec2:DescribeNetworkInterfaces",
        }
        assert {"ecs:ListClusters", "iam:ListRoles", "ecs:ListTaskDefinitionFamilies"} <= (
            permissions.extras(mode, "gc")
        )
        # The library's and gc's extras are reads only: every write is the engine's.
        for audience in others:
            assert not {
                a
                for a in permissions.extras(mode, audience)
                if not a.split(":")[1].startswith(("Get", "List", "Describe"))
            }


def test_no_permission_needed_is_what_clients_call() -> None:
    assert calls_in(PACKAGE / "aws" / "clients.py") == set(permissions.NO_PERMISSION_NEEDED)


def test_implied_actions_name_the_calls_that_imply_them() -> None:
    for module, table in permissions.PERMISSIONS.items():
        for need in table:
            if need.direct:
                continue
            assert need.operations, need
            for operation in need.operations:
                assert any(
                    n.direct and n.operation == operation for n in permissions.PERMISSIONS[module]
                ), f"{module}: {need.action} implied by {operation}, which it does not call"


def _owners() -> list[Owner]:
    return [
        Owner(uid=str(uuid.uuid4()), name="a", namespace="default"),
        Owner(uid=str(uuid.uuid4()), name="x" * 253, namespace="n" * 63),
        Owner(uid="0" * 36, name="my.cluster-1", namespace=None, kind="Python"),
    ]


@pytest.mark.parametrize("owner", _owners(), ids=["short", "long", "python"])
def test_created_names_fall_inside_the_scoped_resources(owner: Owner) -> None:
    names = ResourceNames.for_owner(owner)
    resources = [
        r
        for s in permissions.policy("create-all")["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]

    def allowed(arn: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources if pattern != "*")

    account, region = "123456789012", "eu-west-1"
    assert allowed(f"arn:aws:ecs:{region}:{account}:cluster/{names.ecs_cluster}")
    assert allowed(f"arn:aws:ecs:{region}:{account}:task/{names.ecs_cluster}/0123abcd")
    for role in (names.execution_role, names.task_role):
        assert allowed(f"arn:aws:iam::{account}:role/{role}")
    assert allowed(f"arn:aws:logs:{region}:{account}:log-group:{names.log_group}")
    assert allowed(f"arn:aws:logs:{region}:{account}:log-group:{names.log_group}:*")
    for family in (names.scheduler_family, names.worker_family):
        assert allowed(f"arn:aws:ecs:{region}:{account}:task-definition/{family}:7")
    assert not allowed(f"arn:aws:iam::{account}:role/admin")
    assert not allowed(f"arn:aws:ecs:{region}:{account}:cluster/production")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", "iam-policy", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _statements(document: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if action in s["Action"]]


@pytest.mark.parametrize("audience", permissions.AUDIENCES)
@pytest.mark.parametrize("mode", permissions.MODES)
def test_cli_prints_the_policy(mode: permissions.Mode, audience: permissions.Audience) -> None:
    proc = _cli("--mode", mode, *(() if audience == "operator" else ("--for", audience)))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document == permissions.policy(mode, audience=audience)
    assert document["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", s) for s in sids)
    assert all(s["Effect"] == "Allow" and s["Action"] for s in document["Statement"])
    printed = {a for s in document["Statement"] for a in s["Action"]}
    assert printed == permissions.actions(mode, audience=audience)
    assert len(re.sub(r"\s", "", proc.stdout)) <= MANAGED_POLICY_LIMIT
    for statement in _statements(document, "iam:PassRole"):
        assert statement["Action"] == ["iam:PassRole"]
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        }
        assert statement["Resource"] != "*"
    # Nothing IAM is granted on every resource.
    for statement in document["Statement"]:
        if any(a.startswith("iam:") for a in statement["Action"]):
            assert statement["Resource"] != "*", statement


def test_bring_your_own_changes_no_shared_infrastructure() -> None:
    byo = permissions.actions("bring-your-own")
    assert not {a for a in byo if a.startswith("iam:") and a not in ("iam:GetRole", "iam:PassRole")}
    assert not {a for a in byo if a.startswith(("ec2:", "logs:")) and ":Describe" not in a}
    assert not byo & {"ecs:CreateCluster", "ecs:DeleteCluster"}
    assert byo <= permissions.actions("create-all")
    # ECS tags on create (RegisterTaskDefinition, RunTask), and later only our own task
    # definitions (Retain, heartbeat): never the user's cluster or anything else existing.
    on_create, ours = sorted(
        _statements(permissions.policy("bring-your-own"), "ecs:TagResource"),
        key=lambda statement: "Condition" not in statement,
    )
    assert on_create["Condition"]["StringEquals"]["ecs:CreateAction"] == [
        "RegisterTaskDefinition",
        "RunTask",
    ]
    assert ours["Resource"] == f"arn:aws:ecs:*:*:task-definition/{NAME_PREFIX}*:*"


def test_create_all_attaches_only_the_execution_policy_by_default() -> None:
    (attach,) = _statements(permissions.policy("create-all"), "iam:AttachRolePolicy")
    assert attach["Condition"]["ArnEquals"]["iam:PolicyARN"] == [
        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    ]
    proc = _cli("--task-role-policy", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    (attach,) = _statements(json.loads(proc.stdout), "iam:AttachRolePolicy")
    assert attach["Condition"]["ArnEquals"]["iam:PolicyARN"][1].endswith("AmazonS3ReadOnlyAccess")
    (attach,) = _statements(
        json.loads(_cli("--task-role-policy", "*").stdout), "iam:DetachRolePolicy"
    )
    assert "Condition" not in attach


def test_cli_narrows_arns() -> None:
    role = "arn:aws-cn:iam::111122223333:role/team-*"
    cluster = "arn:aws-cn:ecs:cn-north-1:111122223333:cluster/team"
    proc = _cli(
        "--mode",
        "bring-your-own",
        "--partition",
        "aws-cn",
        "--account",
        "111122223333",
        "--region",
        "cn-north-1",
        "--role-arn",
        role,
        "--cluster-arn",
        cluster,
    )
    document = json.loads(proc.stdout)
    (get_role,) = _statements(document, "iam:GetRole")
    (pass_role,) = _statements(document, "iam:PassRole")
    assert get_role["Resource"] == pass_role["Resource"] == role
    (describe,) = _statements(document, "ecs:DescribeClusters")
    assert describe["Resource"] == cluster
    (tasks,) = _statements(document, "ecs:StopTask")
    assert tasks["Resource"] == "arn:aws-cn:ecs:cn-north-1:111122223333:task/team/*"
    assert "arn:aws:" not in proc.stdout


def test_cli_rejects_options_of_the_other_mode() -> None:
    assert _cli("--mode", "create-all", "--role-arn", "arn:aws:iam::1:role/x").returncode == 2
    assert _cli("--mode", "bring-your-own", "--task-role-policy", "*").returncode == 2
    assert _cli("--mode", "nonsense").returncode == 2


def test_explain_lists_every_action_with_a_reason() -> None:
    out = _cli("--mode", "create-all", "--explain").stdout
    listed = {line.split()[0] for line in out.splitlines()}
    assert listed == permissions.actions("create-all") | set(permissions.NO_PERMISSION_NEEDED)
    assert "[implied]" in out


def test_operator_output_is_the_default() -> None:
    for mode in permissions.MODES:
        assert _cli("--mode", mode).stdout == _cli("--mode", mode, "--for", "operator").stdout


def test_library_heartbeat_tags_only_what_it_created() -> None:
    (ours,) = [
        s
        for s in permissions.policy("bring-your-own", audience="library")["Statement"]
        if s["Sid"] == "OurTaskDefinitions"
    ]
    assert ours["Action"] == ["ecs:TagResource"]
    assert ours["Resource"] == f"arn:aws:ecs:*:*:task-definition/{NAME_PREFIX}*:*"
    # create-all: the heartbeat goes on our cluster, already taggable by the operator policy.
    (cluster,) = [
        s
        for s in permissions.policy("create-all", audience="library")["Statement"]
        if s["Sid"] == "OurEcsCluster"
    ]
    assert "ecs:TagResource" in cluster["Action"]
    (logs,) = _statements(permissions.policy("create-all", audience="library"), "logs:GetLogEvents")
    assert logs["Resource"] == f"arn:aws:logs:*:*:log-group:{LOG_GROUP_PREFIX}*"


def test_gc_lists_roles_without_granting_iam_on_everything() -> None:
    (roles,) = _statements(permissions.policy("create-all", audience="gc"), "iam:ListRoles")
    assert roles["Resource"] == "arn:aws:iam::*:role/*" and roles["Action"] == ["iam:ListRoles"]
    (clusters,) = _statements(
        permissions.policy("create-all", audience="gc"), "ecs:DescribeClusters"
    )
    assert clusters["Resource"] == "arn:aws:ecs:*:*:cluster/*"


def test_explain_for_library() -> None:
    out = _cli("--for", "library", "--explain").stdout
    listed = {line.split()[0] for line in out.splitlines()}
    assert listed == permissions.actions("create-all", audience="library") | set(
        permissions.NO_PERMISSION_NEEDED
    )
    assert "get_logs()" in out
    assert _cli("--for", "nonsense").returncode == 2


def test_assuming_tenant_roles_is_granted_only_on_the_roles_given() -> None:
    plain = permissions.policy("create-all")
    assert "sts:AssumeRole" not in {a for s in plain["Statement"] for a in s["Action"]}
    roles = ("arn:aws:iam::222222222222:role/dask-aws-tenant-*",)
    document = permissions.policy("create-all", permissions.Options(tenant_roles=roles))
    (statement,) = _statements(document, "sts:AssumeRole")
    assert statement["Action"] == ["sts:AssumeRole"] and statement["Resource"] == roles[0]
    proc = _cli("--tenant-role", roles[0])
    assert proc.returncode == 0 and json.loads(proc.stdout) == document
