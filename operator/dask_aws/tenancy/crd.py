"""The DaskAwsPolicy CRD, generated from tenancy/spec.py with crd.py's helpers."""

from __future__ import annotations

from dask_aws.crd import (
    Schema,
    age_column,
    definition,
    openapi_schema,
    ready_column,
    status_schema,
)
from dask_aws.tenancy.spec import DaskAwsPolicySpec, DaskAwsPolicyStatus

KIND = "DaskAwsPolicy"
PLURAL = "daskawspolicies"
SINGULAR = "daskawspolicy"
SHORT_NAMES = ["dap"]


def _columns() -> list[Schema]:
    # A column is one JSONPath, so "used/limit" is two columns side by side.
    return [
        {"name": "Clusters", "type": "integer", "jsonPath": ".status.used.clusters"},
        {"name": "MaxClusters", "type": "integer", "jsonPath": ".spec.limits.clusters"},
        {"name": "HourlyUSD", "type": "string", "jsonPath": ".status.used.hourlyUSD"},
        {"name": "MaxHourlyUSD", "type": "string", "jsonPath": ".spec.limits.hourlyUSD"},
        ready_column(),
        age_column(),
    ]


def _status_schema() -> Schema:
    schema = status_schema(DaskAwsPolicyStatus)
    # Condition's own text speaks of schedulers and workers; a policy's Ready means this.
    kind = schema["properties"]["conditions"]["items"]["properties"]["type"]
    kind["description"] = (
        "Ready: the namespace's policies are read and merged (False: they conflict, e.g. two "
        "AWS identities). Reconciling and Stalled are not used."
    )
    return schema


def policy_crd() -> Schema:
    """The DaskAwsPolicy CRD."""
    return definition(
        KIND,
        PLURAL,
        SINGULAR,
        SHORT_NAMES,
        "Limits, allowlists, defaults and an AWS identity for the DaskAwsClusters of its "
        "namespace, set by a platform admin.",
        openapi_schema(DaskAwsPolicySpec),
        _status_schema(),
        {"status": {}},
        _columns(),
    )
