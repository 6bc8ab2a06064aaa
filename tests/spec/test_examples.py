"""The shipped examples are valid: pydantic parses them (as their kind) and the real API
server admits them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dask_aws.jobs.spec import DaskAwsJobSpec
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.tenancy.spec import DaskAwsPolicySpec

MODELS = {
    "DaskAwsCluster": DaskAwsClusterSpec,
    "DaskAwsJob": DaskAwsJobSpec,
    "DaskAwsPolicy": DaskAwsPolicySpec,
}

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path, k8s: Any, k8s_namespace: str) -> None:
    manifest = yaml.safe_load(path.read_text())
    MODELS[manifest["kind"]].model_validate(manifest["spec"])
    proc = k8s.kubectl(
        "create", "--dry-run=server", "-n", k8s_namespace, "-f", str(path), check=False
    )
    assert proc.returncode == 0, proc.stderr
