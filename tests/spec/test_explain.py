"""`kubectl explain` against the real API server describes every field of the CRD."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.crd_schema import explain, open_api_schema, properties

pytestmark = pytest.mark.k8s

RESOURCE = "daskawsclusters"


def _explain(k8s: Any, path: str) -> str:
    return explain(k8s, f"{RESOURCE}.{path}" if path else RESOURCE)


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
