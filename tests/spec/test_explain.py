"""`kubectl explain` against the real API server describes every field of the CRD."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.crd_schema import open_api_schema, properties

pytestmark = pytest.mark.k8s

RESOURCE = "daskawsclusters"
OPENAPI_WAIT_SECONDS = 60  # the API server publishes a new CRD's OpenAPI asynchronously


def _explain(k8s: Any, path: str) -> str:
    target = f"{RESOURCE}.{path}" if path else RESOURCE
    deadline = time.monotonic() + OPENAPI_WAIT_SECONDS
    while True:
        proc = k8s.kubectl("explain", target, check=False)
        if proc.returncode == 0:
            return str(proc.stdout)
        if time.monotonic() > deadline:
            raise AssertionError(f"kubectl explain {target}: {proc.stderr}")
        time.sleep(1)


def test_kubectl_explain_shows_no_field_without_a_description(k8s: Any) -> None:
    # Explaining each object lists its fields with their descriptions; --recursive would
    # list names only, so it cannot show a missing description.
    objects = [""] + [path for path, node in properties(open_api_schema()) if "properties" in node]
    undescribed = {}
    for path in objects:
        text = _explain(k8s, path)
        if "<no description>" in text or "<empty>" in text:
            undescribed[path or RESOURCE] = text
    assert undescribed == {}, "\n\n".join(undescribed.values())
