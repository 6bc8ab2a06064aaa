"""The CustomResourceDefinition, generated from the pydantic models.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema (every
node typed, no $ref, no anyOf-with-null, no `additionalProperties: false`, no
propertyNames). The conversion below is the only place that knows the difference.

Three kinds: DaskAwsCluster (spec.py, status.py, here), DaskAwsPolicy (tenancy/crd.py) and
DaskAwsJob (jobs/crd.py), the latter two from these helpers, each its own CRD and committed
file; `dask-aws crd` prints them as one YAML stream.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

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
        # A field's own rules (e.g. immutability) come on top of its model's, not instead.
        rules = "x-kubernetes-validations"
        if rules in target and rules in node:
            merged[rules] = target[rules] + node[rules]
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
            # Defaulting {} lets nested defaults apply, so CEL rules may read them; not
            # where a field is required ({} would not be valid).
            if (
                child.get("type") == "object"
                and "properties" in child
                and not child.get("nullable")
                and not child.get("required")
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


def openapi_schema(model: type[BaseModel]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(_resolve(raw, raw.get("$defs", {})))


def status_schema(model: type[BaseModel]) -> Schema:
    schema = openapi_schema(model)
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


def ready_column() -> Schema:
    return {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    }


def age_column() -> Schema:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _columns() -> list[Schema]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.workers.replicas"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.replicas"},
        ready_column(),
        {"name": "Scheduler", "type": "string", "jsonPath": ".status.schedulerAddress"},
        age_column(),
    ]


def definition(
    kind: str,
    plural: str,
    singular: str,
    short_names: list[str],
    description: str,
    spec: Schema,
    status: Schema,
    subresources: Schema,
    columns: list[Schema],
) -> Schema:
    """A namespaced CRD of GROUP/VERSION, in the category `dask` (`kubectl get dask`)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": short_names,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": f"API version: {GROUP}/{VERSION}.",
                                },
                                "kind": {"type": "string", "description": f"Kind: {kind}."},
                                # No description: the API server forbids any at the root's
                                # metadata and shows ObjectMeta's own.
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd() -> Schema:
    """The DaskAwsCluster CRD."""
    return definition(
        KIND,
        PLURAL,
        SINGULAR,
        SHORT_NAMES,
        "A Dask cluster (scheduler and workers) on Amazon ECS.",
        openapi_schema(DaskAwsClusterSpec),
        status_schema(ClusterStatus),
        {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.workers.replicas",
                "statusReplicasPath": ".status.replicas",
            },
        },
        _columns(),
    )


def crd_documents() -> list[tuple[str, str]]:
    """(file name under crds/, YAML text) of each CRD, the cluster's first."""
    # Imported here: tenancy/crd.py builds on this module's helpers.
    from dask_aws.jobs.crd import job_crd
    from dask_aws.tenancy.crd import policy_crd

    found = []
    for name, source, manifest in (
        ("daskawscluster.yaml", "dask_aws/spec.py", crd()),
        ("daskawspolicy.yaml", "dask_aws/tenancy/spec.py", policy_crd()),
        ("daskawsjob.yaml", "dask_aws/jobs/spec.py", job_crd()),
    ):
        header = f"# Generated by `dask-aws crd` from {source}; do not edit.\n"
        found.append((name, header + yaml.safe_dump(manifest, sort_keys=False, width=100)))
    return found


def crd_yaml() -> str:
    """Every CRD as one multi-document YAML stream (`kubectl apply -f -` takes it)."""
    return "---\n".join(text for _, text in crd_documents())
