"""Tenant guardrails: what a DaskAwsCluster may reference, as the platform team allows."""

from __future__ import annotations

from dask_aws.controller.config import OperatorConfig, matches
from dask_aws.errors import PermanentError
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.tenancy import merge

FORBIDDEN = "Forbidden"
TOO_MANY_WORKERS = "TooManyWorkers"


def check(spec: DaskAwsClusterSpec, config: OperatorConfig) -> None:
    """Raise PermanentError naming the setting that forbids the spec."""
    problems = [(FORBIDDEN, p) for p in _references(spec, config)]
    problems += [(TOO_MANY_WORKERS, p) for p in _workers(spec, config)]
    if problems:
        reasons = {reason for reason, _ in problems}
        # One reason for tools: the specific one when it is the only kind of problem.
        reason = reasons.pop() if len(reasons) == 1 else FORBIDDEN
        raise PermanentError(reason, "; ".join(text for _, text in problems))


def _workers(spec: DaskAwsClusterSpec, config: OperatorConfig) -> list[str]:
    # autoscaling.maximum above the limit is not an error: the autoscaler is clamped to it
    # (step.py passes it the limit). What must start (replicas, the autoscaling minimum) cannot be.
    limit = config.max_workers
    setting = f"the operator setting maxWorkers ({limit}, DASK_AWS_MAX_WORKERS)"
    problems = []
    if spec.workers.replicas > limit:
        problems.append(f"workers.replicas {spec.workers.replicas} exceeds {setting}")
    if spec.autoscaling is not None and spec.autoscaling.minimum > limit:
        problems.append(f"autoscaling.minimum {spec.autoscaling.minimum} exceeds {setting}")
    for group in spec.worker_groups:
        where = f"workerGroups[{group.name}]"
        if group.replicas > limit:
            problems.append(f"{where}.replicas {group.replicas} exceeds {setting}")
        if group.autoscaling is not None and group.autoscaling.minimum > limit:
            problems.append(
                f"{where}.autoscaling.minimum {group.autoscaling.minimum} exceeds {setting}"
            )
    return problems


def _references(spec: DaskAwsClusterSpec, config: OperatorConfig) -> list[str]:
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
    if config.require_tls and not spec.tls.enabled:
        problems.append(
            "tls.enabled false (plain tcp://, no authentication) is not allowed by the "
            "operator setting requireTls (DASK_AWS_REQUIRE_TLS)"
        )
    if config.allowed_image_prefixes:
        # Every image, not only spec.image: a worker image is as able to run code.
        for field, image in merge.images(spec):
            if not any(image.startswith(p) for p in config.allowed_image_prefixes):
                problems.append(
                    f"{field} {image} does not start with a prefix allowed by the operator "
                    "setting allowedImagePrefixes (DASK_AWS_ALLOWED_IMAGE_PREFIXES)"
                )
    return problems
