"""Tenant guardrails: what a DaskAwsCluster may reference, as the platform team allows."""

from __future__ import annotations

from dask_aws.controller.config import OperatorConfig, matches
from dask_aws.errors import PermanentError
from dask_aws.spec import DaskAwsClusterSpec


def check(spec: DaskAwsClusterSpec, config: OperatorConfig) -> None:
    """Raise PermanentError naming the setting that forbids the spec."""
    problems: list[str] = []
    if (
        config.allowed_cluster_arns
        and spec.cluster_arn
        and not matches(spec.cluster_arn, config.allowed_cluster_arns)
    ):
        problems.append(
            f"clusterArn {spec.cluster_arn} is not allowed by the operator setting "
            "allowedClusterArns (DASK_AWS_ALLOWED_CLUSTER_ARNS)"
        )
    if config.allowed_role_arns:
        for field, arn in (
            ("iam.executionRoleArn", spec.iam.execution_role_arn),
            ("iam.taskRoleArn", spec.iam.task_role_arn),
            *((f"iam.taskRolePolicies[{i}]", p) for i, p in enumerate(spec.iam.task_role_policies)),
        ):
            if arn and not matches(arn, config.allowed_role_arns):
                problems.append(
                    f"{field} {arn} is not allowed by the operator setting allowedRoleArns "
                    "(DASK_AWS_ALLOWED_ROLE_ARNS)"
                )
    if config.allowed_image_prefixes and not any(
        spec.image.startswith(p) for p in config.allowed_image_prefixes
    ):
        problems.append(
            f"image {spec.image} does not start with a prefix allowed by the operator setting "
            "allowedImagePrefixes (DASK_AWS_ALLOWED_IMAGE_PREFIXES)"
        )
    limit = config.max_workers
    if limit is not None:
        asked = max(spec.workers.replicas, spec.autoscaling.maximum if spec.autoscaling else 0)
        if asked > limit:
            problems.append(
                f"{asked} workers exceed the operator setting maxWorkers ({limit}, "
                "DASK_AWS_MAX_WORKERS)"
            )
    if problems:
        raise PermanentError("Forbidden", "; ".join(problems))
