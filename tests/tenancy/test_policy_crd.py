"""The DaskAwsPolicy CRD: generated like the cluster's, and the real API server admits a
full policy and refuses bad ones with the schema's reasons."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dask_aws.crd import crd
from dask_aws.tenancy.crd import policy_crd
from dask_aws.tenancy.spec import DaskAwsPolicySpec
from tests.fixtures.crd_schema import properties

ROLE = "arn:aws:iam::123456789012:role/team-a-tasks"
FULL: dict[str, Any] = {
    "limits": {
        "clusters": 3,
        "workers": 40,
        "vcpu": 64.5,
        "memoryMiB": 262144,
        "gpus": 0,
        "hourlyUSD": "12.50",
    },
    "allowedImagePrefixes": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/team-a/"],
    "allowedRoleArns": ["arn:aws:iam::123456789012:role/team-a-*"],
    "allowedClusterArns": ["arn:aws:ecs:us-east-1:123456789012:cluster/shared"],
    "allowPlainTcp": False,
    "defaults": {
        "subnets": ["subnet-0abc"],
        "securityGroups": ["sg-0abc"],
        "executionRoleArn": ROLE,
        "taskRoleArn": ROLE,
        "logRetentionDays": 30,
        "tags": {"team": "a", "cost-center": "42"},
        "idleTimeoutSeconds": 1800,
    },
    "aws": {"roleArn": ROLE, "externalId": "team-a-external", "region": "eu-west-1"},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        node = node[part]
    node[last] = value
    return spec


# (what breaks, the spec, a word the API server's refusal must carry)
BAD = [
    ("negative limit", _with("limits.workers", -1), "spec.limits.workers"),
    ("hourlyUSD not a decimal", _with("limits.hourlyUSD", "12,50$"), "spec.limits.hourlyUSD"),
    ("bad role ARN", _with("aws.roleArn", "arn:aws:iam::123:role/x"), "spec.aws.roleArn"),
    ("bad default role", _with("defaults.taskRoleArn", "team-a"), "spec.defaults.taskRoleArn"),
    ("retention", _with("defaults.logRetentionDays", 2), "spec.defaults.logRetentionDays"),
    ("reserved tag", _with("defaults.tags", {"aws:owner": "team-a"}), "keys must not start with"),
    ("short externalId", _with("aws.externalId", "x"), "spec.aws.externalId"),
]


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = policy_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_names_subresources_and_columns() -> None:
    spec = policy_crd()["spec"]
    version = spec["versions"][0]
    assert spec["names"]["plural"] == "daskawspolicies" and spec["names"]["shortNames"] == ["dap"]
    assert spec["names"]["categories"] == crd()["spec"]["names"]["categories"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Clusters", "MaxClusters", "HourlyUSD", "MaxHourlyUSD", "Ready", "Age"]


def test_schema_is_structural_and_described() -> None:
    def walk(node: object) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node and "anyOf" not in node
            assert node.get("additionalProperties") is not False
            for value in node.values():
                walk(value)

    walk(_schema())
    missing = [p for p, n in properties(_schema()) if p != "metadata" and not n.get("description")]
    assert missing == []
    assert _schema()["properties"]["status"]["properties"]["observedGeneration"]["default"] == 0


def test_patterns_agree_with_the_cluster_spec() -> None:
    cluster = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    policy = _schema()["properties"]["spec"]["properties"]
    assert (
        policy["defaults"]["properties"]["subnets"]["items"]["pattern"]
        == cluster["properties"]["network"]["properties"]["subnets"]["items"]["pattern"]
    )
    assert (
        policy["aws"]["properties"]["region"]["pattern"]
        == cluster["properties"]["region"]["pattern"]
    )
    assert (
        policy["defaults"]["properties"]["logRetentionDays"]["enum"]
        == (cluster["properties"]["logs"]["properties"]["retentionDays"]["enum"])
    )


def test_pydantic_takes_the_full_policy_and_refuses_the_bad_ones() -> None:
    assert DaskAwsPolicySpec.model_validate(FULL).wire() == FULL
    for _, spec, _ in BAD:
        with pytest.raises(ValidationError):
            DaskAwsPolicySpec.model_validate(spec)


def _create(k8s: Any, namespace: str, spec: dict[str, Any]) -> Any:
    manifest = {
        "apiVersion": "daskaws.io/v1alpha1",
        "kind": "DaskAwsPolicy",
        "metadata": {"name": "team-a"},
        "spec": spec,
    }
    return k8s.kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(manifest),
        check=False,
    )


def test_api_server_admits_a_full_policy_and_refuses_bad_ones(k8s: Any, k8s_namespace: str) -> None:
    accepted = _create(k8s, k8s_namespace, FULL)
    assert accepted.returncode == 0, accepted.stderr
    assert "daskawspolicy.daskaws.io/team-a created (server dry run)" in accepted.stdout
    for what, spec, reason in BAD:
        refused = _create(k8s, k8s_namespace, spec)
        assert refused.returncode != 0 and reason in refused.stderr, (what, refused.stderr)
