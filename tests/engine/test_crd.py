"""The CRD is generated from the spec model and never drifts from the committed file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from dask_aws.crd import crd

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crd_matches_dask_aws_crd_output() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", "crd"], check=True, capture_output=True, text=True
    ).stdout
    committed = (ROOT / "crds" / "daskawscluster.yaml").read_text()
    assert yaml.safe_load(printed) == yaml.safe_load(committed), (
        "crds/daskawscluster.yaml is stale: run `dask-aws crd > crds/daskawscluster.yaml`"
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
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.workers.cpu == 256" in r for r in rules)
