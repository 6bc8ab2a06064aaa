"""The CustomResourceDefinition, generated from the pydantic models.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema (every
node typed, no $ref, no anyOf-with-null, no `additionalProperties: false`, no
propertyNames). The conversion below is the only place that knows the difference.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import ClusterStatus

GROUP = "daskaws.io"
VERSION = "v1alpha1"
KIND = "DaskAwsCluster"
PLURAL = "daskawsclusters"
SINGULAR = "daskawscluster"
SHORT_NAMES = ["dac"]
CATEGORIES = ["dask"]
MAX_MAP_ENTRIES = 100
MAX_LIST_ITEMS = 200

Schema = dict[str, Any]


def _resolve(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {key: _resolve(value, defs) for key, value in node.items()}


def _key_rule(pattern: str) -> dict[str, str]:
    escaped = pattern.replace("\\", "\\\\")
    return {"rule": f"self.all(k, k.matches('{escaped}'))", "message": f"keys must match {pattern}"}


def _structural(node: Schema) -> Schema:
    if "anyOf" in node:
        node = dict(node)
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {options} in a structural schema")
        node = {**options[0], **node, "nullable": True}
        if node.get("default", ...) is None:
            del node["default"]
    node = {k: v for k, v in node.items() if k not in ("title", "$defs")}
    if "description" in node:
        # One line: `kubectl explain` wraps it, and a docstring's line breaks would show.
        node["description"] = " ".join(node["description"].split())
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # JSON Schema 2020 (pydantic) writes the bound itself; OpenAPI 3.0 a flag beside it.
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[limit], node[bound] = value, True
    rules = list(node.pop("x-kubernetes-validations", []))
    names = node.pop("propertyNames", None)
    if names and "pattern" in names:
        rules.append(_key_rule(names["pattern"]))
    for pattern, value_schema in node.pop("patternProperties", {}).items():
        rules.append(_key_rule(pattern))
        node["additionalProperties"] = value_schema
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"])
        node.setdefault("maxProperties", MAX_MAP_ENTRIES)
    if "items" in node:
        node["items"] = _structural(node["items"])
        node.setdefault("maxItems", MAX_LIST_ITEMS)
    if "properties" in node:
        props = {}
        for name, child in node["properties"].items():
            child = _say_default(_structural(child))
            # Defaulting {} lets nested defaults apply, so CEL rules may read them.
            if (
                child.get("type") == "object"
                and "properties" in child
                and not child.get("nullable")
            ):
                child.setdefault("default", {})
            props[name] = child
        node["properties"] = props
    if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
        node["maxLength"] = 4096
    if rules:
        node["x-kubernetes-validations"] = rules
    return node


def _say_default(node: Schema) -> Schema:
    """Append a scalar default to the description: `kubectl explain` shows no `default`."""
    default = node.get("default")
    if isinstance(default, bool):
        default = str(default).lower()
    if not isinstance(default, int | float | str) or default == "" or "description" not in node:
        return node
    return {**node, "description": f"{node['description'].rstrip('.')}. Default: {default}."}


def openapi_schema(model: type[DaskAwsClusterSpec] | type[ClusterStatus]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(_resolve(raw, raw.get("$defs", {})))


def _status_schema() -> Schema:
    schema = openapi_schema(ClusterStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    # kstatus (Flux, cli-utils) calls a custom resource without status Current, so a fresh
    # object would pass GitOps health gates before any operator saw it. The API server
    # defaults status even while the status subresource keeps clients from writing it, and
    # observedGeneration 0 (generations start at 1) reads as "spec not observed yet".
    schema["default"] = {}
    observed = dict(schema["properties"]["observedGeneration"])
    observed.pop("nullable", None)  # a null would stay null, and kstatus errors on it
    schema["properties"]["observedGeneration"] = _say_default({**observed, "default": 0})
    return schema


def _columns() -> list[Schema]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.workers.replicas"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.replicas"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {"name": "Scheduler", "type": "string", "jsonPath": ".status.schedulerAddress"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def crd() -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.workers.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                    "additionalPrinterColumns": _columns(),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Dask cluster (scheduler and workers) on Amazon ECS.",
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": f"API version: {GROUP}/{VERSION}.",
                                },
                                "kind": {"type": "string", "description": f"Kind: {KIND}."},
                                # No description: the API server forbids any at the root's
                                # metadata and shows ObjectMeta's own.
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(DaskAwsClusterSpec),
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `dask-aws crd` from dask_aws/spec.py; do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)
