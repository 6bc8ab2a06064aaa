"""The DaskAwsJob CRD, generated from jobs/spec.py and jobs/status.py with crd.py's helpers."""

from __future__ import annotations

from dask_aws.crd import Schema, age_column, definition, openapi_schema, status_schema
from dask_aws.jobs.spec import DaskAwsJobSpec
from dask_aws.jobs.status import JobStatus

KIND = "DaskAwsJob"
PLURAL = "daskawsjobs"
SINGULAR = "daskawsjob"
SHORT_NAMES = ["daj"]


def _columns() -> list[Schema]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Cluster", "type": "string", "jsonPath": ".status.cluster.name"},
        {"name": "Attempts", "type": "integer", "jsonPath": ".status.attempts"},
        {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
        {"name": "Finished", "type": "date", "jsonPath": ".status.completionTime"},
        age_column(),
    ]


def job_crd() -> Schema:
    """The DaskAwsJob CRD."""
    return definition(
        KIND,
        PLURAL,
        SINGULAR,
        SHORT_NAMES,
        "A Dask program run once on Amazon ECS, on a cluster made for it or an existing "
        "DaskAwsCluster, reported as a batch/v1 Job is.",
        openapi_schema(DaskAwsJobSpec),
        status_schema(JobStatus),
        {"status": {}},
        _columns(),
    )
