"""Spec changes that move a cluster, and deletion after an update the operator refuses, as a
user makes them with kubectl against one operator on the simulated local AWS.

Moves: `kubectl patch` of region, clusterArn, logs.group, network.securityGroups or an IAM
role ARN makes the operator remove what it had created there (in its own region) once the
cluster runs on the new place; `kubectl delete` then leaves nothing tagged with the
owner's uid in any region, and never touches what the user brought.

Rejected updates: an update the API server accepts but the operator refuses (a spec it
cannot parse, an image the platform team does not allow) stalls the object; deleting it
still acts on what status records: Retain keeps every resource (tagged retained), Delete
removes them all, in us-west-2.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from dask_aws.aws.found import Target
from dask_aws.aws.iam_roles import TRUST_POLICY
from dask_aws.aws.tags import RETAINED
from dask_aws.engine.delete import delete
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import CreatedResource
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.polling import wait_for
from tests.fixtures.shared_operator import (
    document,
    module_operator,
    objects,
    regional,
    resource_tags,
    running_tasks,
    small_spec,
    wait_gone,
    wait_ready,
    wait_stalled,
)

pytestmark = [pytest.mark.k8s]

REGIONS = ("us-east-1", "us-west-2")
WEST = "us-west-2"
ALLOWED_IMAGES = "ghcr.io/dask/"
FIELDS = [
    "region",
    "clusterArn",
    "logs.group",
    "network.securityGroups",
    "iam.executionRoleArn",
    "iam.taskRoleArn",
]
# The kind of status.aws.created entry a move of the field stops using.
MOVED_KIND = {
    "clusterArn": "cluster",
    "logs.group": "log-group",
    "network.securityGroups": "security-group",
    "iam.executionRoleArn": "execution-role",
    "iam.taskRoleArn": "task-role",
}
POLICIES = ["Retain", "Delete"]
# Specs the API server takes and the operator refuses: one it cannot parse (AWS tag keys
# and variable names have limits the CRD does not carry; the first the API server accepts
# is used), and one only the operator's guardrail forbids.
UNPARSEABLE: list[dict[str, Any]] = [
    {"tags": {"k" * 200: "v"}},
    {"secrets": {"S" * 300: "arn:aws:secretsmanager:us-west-2:123456789012:secret:x-AbCdEf"}},
    {"scheduler": {"env": {"E" * 300: "x"}}},
]
FORBIDDEN = {"image": "docker.io/attacker/dask:latest"}


def _move_name(field: str) -> str:
    return "move-" + field.lower().replace(".", "-")


def _rejected_name(policy: str, kind: str) -> str:
    return f"{policy.lower()}-{kind}"


@dataclass
class Module:
    namespace: str
    operator: OperatorProcess
    user: dict[str, tuple[str, str]]  # field -> (kind, id) of what the user brought
    first: dict[str, dict[str, Any]]  # name -> the object when it was first Ready


def _user_resources(local: Any) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
    """What a user brings, made with boto3 on the local AWS in us-east-1."""
    aws = regional(local, "us-east-1")
    name = f"user-{uuid.uuid4().hex[:8]}"
    cluster = aws.ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    group = f"/user/{name}"
    aws.logs.create_log_group(logGroupName=group)
    vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    sg = aws.ec2.create_security_group(
        GroupName=name, Description="the user's own", VpcId=vpc["VpcId"]
    )["GroupId"]
    roles = {}
    for kind in ("exec", "task"):
        roles[kind] = aws.iam.create_role(
            RoleName=f"{name}-{kind}", AssumeRolePolicyDocument=TRUST_POLICY
        )["Role"]["Arn"]
    patches: dict[str, dict[str, Any]] = {
        "region": {"region": WEST},
        "clusterArn": {"clusterArn": cluster},
        "logs.group": {"logs": {"group": group}},
        "network.securityGroups": {"network": {"securityGroups": [sg]}},
        "iam.executionRoleArn": {"iam": {"executionRoleArn": roles["exec"]}},
        "iam.taskRoleArn": {"iam": {"taskRoleArn": roles["task"]}},
    }
    user = {
        "clusterArn": ("cluster", cluster),
        "logs.group": ("log-group", group),
        "network.securityGroups": ("security-group", sg),
        "iam.executionRoleArn": ("execution-role", roles["exec"]),
        "iam.taskRoleArn": ("task-role", roles["task"]),
    }
    return patches, user


@pytest.fixture(scope="module")
def module(
    k8s: Any, local_aws_simulated: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Module]:
    """One operator; every cluster of the module applied at once, so they start together,
    and every move patched at once once they are Ready, so they move together."""
    patches, user = _user_resources(local_aws_simulated)
    env = {"DASK_AWS_ALLOWED_IMAGE_PREFIXES": ALLOWED_IMAGES}
    log_dir = tmp_path_factory.mktemp("moves")
    with module_operator(k8s, local_aws_simulated, log_dir, "moves", env) as (ns, operator):
        docs = [document(_move_name(f), small_spec()) for f in FIELDS]
        docs += [
            document(_rejected_name(policy, kind), small_spec(region=WEST, deletionPolicy=policy))
            for policy in POLICIES
            for kind in ("unparseable", "forbidden")
        ]
        text = "---\n".join(yaml.safe_dump(d) for d in docs)
        k8s.kubectl("apply", "-n", ns, "-f", "-", input=text)
        first = wait_ready(k8s, ns, [d["metadata"]["name"] for d in docs], 120)
        for field in FIELDS:
            _patch(k8s, ns, _move_name(field), patches[field])
        yield Module(ns, operator, user, first)


def _patch(k8s: Any, ns: str, name: str, spec: dict[str, Any]) -> None:
    k8s.kubectl("patch", "dac", name, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def _event_reasons(k8s: Any, ns: str, name: str) -> set[str]:
    proc = k8s.kubectl(
        "get", "events", "-n", ns, "-o", "json", f"--field-selector=involvedObject.name={name}"
    )
    return {e["reason"] for e in json.loads(proc.stdout)["items"]}


def _leaks(local: Any, uid: str) -> dict[str, list[str]]:
    return {r: tagged_resources(regional(local, r), uid) for r in REGIONS}


def _exists(local: Any, entry: dict[str, str], uid: str) -> bool:
    aws = regional(local, entry["region"] or "us-east-1")
    if entry["kind"] == "tasks":
        return bool(running_tasks(aws, entry["id"], uid))
    return resource_tags(aws, entry["kind"], entry["id"]) is not None


@pytest.mark.parametrize("field", FIELDS)
def test_patching_a_field_moves_the_cluster_and_delete_leaves_nothing_anywhere(
    module: Module, k8s: Any, local_aws_simulated: Any, field: str
) -> None:
    ns, name = module.namespace, _move_name(field)
    first = module.first[name]
    uid = first["metadata"]["uid"]
    before = first["status"]["aws"]["created"]
    assert {e["kind"] for e in before} >= {"cluster", "security-group", "log-group", "tasks"}
    assert wait_ready(k8s, ns, [name], 60)[name]["metadata"]["generation"] == 2
    # What the spec stopped using goes from status and from AWS, in its own region; for a
    # security group once the tasks that were in it have stopped.
    if field == "region":
        moved = [e for e in before if e["region"] == "us-east-1"]
    else:
        moved = [e for e in before if e["kind"] == MOVED_KIND[field]]
    assert moved

    def removed() -> dict[str, Any] | None:
        obj = objects(k8s, ns)[name]
        created = obj["status"]["aws"]["created"]
        if any(e in created for e in moved) or any(
            _exists(local_aws_simulated, e, uid) for e in moved
        ):
            return None
        return obj

    obj = wait_for(removed, 30, f"{field}: removal of {moved}")
    created = obj["status"]["aws"]["created"]
    if field == "region":
        assert {e["region"] for e in created} == {"", WEST}, created
        # In the old region only the (global) IAM roles, still in use, carry the uid.
        assert [a for a in _leaks(local_aws_simulated, uid)["us-east-1"] if ":role/" not in a] == []
    else:
        assert MOVED_KIND[field] not in {e["kind"] for e in created}, created
    assert "RemovedUnused" in _event_reasons(k8s, ns, name)

    k8s.kubectl("delete", "dac", name, "-n", ns, "--timeout=60s", timeout=90)
    assert _leaks(local_aws_simulated, uid) == {r: [] for r in REGIONS}
    if field in module.user:
        kind, id_ = module.user[field]
        # What the user brought is used as it is, never deleted.
        assert resource_tags(regional(local_aws_simulated, "us-east-1"), kind, id_) is not None
    if field == "clusterArn":
        aws = regional(local_aws_simulated, "us-east-1")
        assert running_tasks(aws, module.user[field][1], uid) == []


def _operator_only(k8s: Any, ns: str, name: str) -> dict[str, Any]:
    """The first spec change of UNPARSEABLE that the API server accepts (server dry-run)."""
    for change in UNPARSEABLE:
        proc = k8s.kubectl(
            "patch",
            "dac",
            name,
            "-n",
            ns,
            "--type=merge",
            "--dry-run=server",
            "-p",
            json.dumps({"spec": change}),
            check=False,
        )
        if proc.returncode == 0:
            return change
    pytest.fail("the API server now refuses every spec only the operator rejected; add one")


def _stall_and_delete(module: Module, k8s: Any, policy: str) -> dict[str, dict[str, Any]]:
    """Ready in us-west-2, updated with what the operator refuses, Stalled, deleted; returns
    each object as it was when Ready."""
    ns = module.namespace
    names = {kind: _rejected_name(policy, kind) for kind in ("unparseable", "forbidden")}
    ready = {n: module.first[n] for n in names.values()}
    _patch(k8s, ns, names["unparseable"], _operator_only(k8s, ns, names["unparseable"]))
    _patch(k8s, ns, names["forbidden"], FORBIDDEN)
    for kind, reason in (("unparseable", "InvalidSpec"), ("forbidden", "Forbidden")):
        obj = wait_stalled(k8s, ns, names[kind], 30)
        condition = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
        assert condition["reason"] == reason, condition
        # Stalled leaves what runs alone: nothing recorded was forgotten.
        assert obj["status"]["aws"]["created"] == ready[names[kind]]["status"]["aws"]["created"]
    k8s.kubectl("delete", "dac", *names.values(), "-n", ns, "--timeout=60s", timeout=90)
    wait_gone(k8s, ns, names.values(), 5)
    return ready


def test_retain_keeps_and_marks_everything_after_an_update_the_operator_refused(
    module: Module, k8s: Any, local_aws_simulated: Any
) -> None:
    ready = _stall_and_delete(module, k8s, "Retain")
    for name, obj in ready.items():
        uid = obj["metadata"]["uid"]
        created = obj["status"]["aws"]["created"]
        regions = {e["region"] for e in created}
        assert regions == {"", WEST}, (name, created)
        for entry in created:
            aws = regional(local_aws_simulated, entry["region"] or "us-east-1")
            if entry["kind"] == "tasks":  # Retain stops nothing
                assert running_tasks(aws, entry["id"], uid), (name, entry)
                continue
            found = resource_tags(aws, entry["kind"], entry["id"])
            assert found is not None, (name, entry, "was deleted")
            assert found.get(RETAINED) == "true", (name, entry, found)
        assert "Retained" in _event_reasons(k8s, module.namespace, name)
        # Clean up for the other tests of the session: the retained resources, as the
        # engine deletes them.
        owner = Owner(uid=uid, name=name, namespace=module.namespace)
        spec = DaskAwsClusterSpec.model_validate({"region": WEST})
        records = [CreatedResource.model_validate(e) for e in created]
        west = regional(local_aws_simulated, WEST)
        assert delete(west, Target(owner, spec), records, discover=False, retain=False).done
        assert _leaks(local_aws_simulated, uid) == {r: [] for r in REGIONS}


def test_delete_removes_everything_after_an_update_the_operator_refused(
    module: Module, k8s: Any, local_aws_simulated: Any
) -> None:
    ready = _stall_and_delete(module, k8s, "Delete")
    for name, obj in ready.items():
        assert {e["region"] for e in obj["status"]["aws"]["created"]} == {"", WEST}
        assert _leaks(local_aws_simulated, obj["metadata"]["uid"]) == {r: [] for r in REGIONS}, name
