"""The CRDs are generated from the spec models and never drift from the committed files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from dask_aws import rules
from dask_aws.crd import crd, crd_documents
from dask_aws.spec import RULES, AutoscalingSpec, DaskAwsClusterSpec, RolloutSpec
from tests.fixtures.crd_schema import open_api_schema, properties

ROOT = Path(__file__).resolve().parents[2]
# The API server forbids a description on the root's metadata; it shows ObjectMeta's own.
UNDESCRIBABLE = {"metadata"}


def test_committed_crds_match_dask_aws_crd_output() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", "crd"], check=True, capture_output=True, text=True
    ).stdout
    documents = list(yaml.safe_load_all(printed))
    names = [d["spec"]["names"]["kind"] for d in documents]
    assert names == ["DaskAwsCluster", "DaskAwsPolicy", "DaskAwsJob"]
    generated = crd_documents()
    assert [yaml.safe_load(text) for _, text in generated] == documents
    for folder in ("crds", "charts/dask-aws-operator/crds"):
        for (name, text), document in zip(generated, documents, strict=True):
            committed = (ROOT / folder / name).read_text()
            # Text, not only the parsed YAML: the chart test compares the two copies' bytes.
            assert committed == text and yaml.safe_load(committed) == document, (
                f"{folder}/{name} is stale: run `dask-aws crd --dir {folder}`"
            )


def test_crd_declares_subresources_columns_and_names() -> None:
    spec = crd()["spec"]
    version = spec["versions"][0]
    assert spec["names"]["shortNames"] == ["dac"] and spec["names"]["categories"] == ["dask"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.workers.replicas",
        "statusReplicasPath": ".status.replicas",
    }
    assert "status" in version["subresources"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Desired", "Running", "Ready", "Scheduler", "Age"]


def test_schema_is_structural() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node and "anyOf" not in node, path
            assert node.get("additionalProperties") is not False, path
            if "properties" in node or "items" in node:
                assert "type" in node, path
            for key, value in node.items():
                walk(value, f"{path}.{key}")

    walk(crd()["spec"]["versions"][0]["schema"], "schema")
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    expressions = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.workers.cpu == 256" in e for e in expressions)


def test_every_property_has_a_description() -> None:
    missing = [
        path
        for path, node in properties(open_api_schema())
        if path not in UNDESCRIBABLE and not str(node.get("description", "")).strip()
    ]
    assert missing == [], f"properties without a description (kubectl explain): {missing}"


def test_the_walk_reaches_array_items_and_map_values() -> None:
    paths = {path for path, _ in properties(open_api_schema())}
    assert {"status.conditions.reason", "spec.workers.memoryLimit", "spec.tags"} <= paths


def test_descriptions_state_scalar_defaults_and_fit_on_one_line() -> None:
    schema = open_api_schema()
    described = dict(properties(schema))
    assert described["spec.workers.cpu"]["description"].endswith("Default: 4096.")
    public_ip = described["spec.network.assignPublicIp"]["description"]
    assert "Default: unset, automatic: a public IP exactly when a subnet routes" in public_ip
    assert all("\n" not in node.get("description", "") for node in described.values())


def test_the_crd_carries_exactly_the_rule_tables_cel_rows() -> None:
    spec = open_api_schema()["properties"]["spec"]
    placed = {
        DaskAwsClusterSpec: spec["x-kubernetes-validations"],
        AutoscalingSpec: spec["properties"]["autoscaling"]["x-kubernetes-validations"],
        RolloutSpec: spec["properties"]["workers"]["properties"]["rollout"][
            "x-kubernetes-validations"
        ],
    }
    for model, found in placed.items():
        assert found == rules.validations(RULES, model)
    assert {r.model for r in RULES if r.cel} <= set(placed)
