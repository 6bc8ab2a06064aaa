"""Checks AWS makes and moto does not, with AWS's error codes and messages.

- RegisterTaskDefinition (requiresCompatibilities FARGATE): awsvpc only, task-level cpu and
  memory required and one of the Fargate pairs below, an execution role for awslogs;
  container secrets need an execution role (any launch type).
- RunTask: 1 <= count <= 10, `startedBy` at most 36 characters, an ACTIVE task definition
  compatible with the launch type, capacity providers associated with the cluster, subnets
  and security groups that exist, a container instance unless it is for Fargate.
- DescribeTasks: at most 100 tasks.
- DeleteCluster: refused while tasks are not STOPPED or services are active.
- DeleteSecurityGroup: refused while a network interface still uses the group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from moto.ec2.exceptions import DependencyViolationError
from moto.ecs.exceptions import ECSException

# Fargate task sizes: cpu units -> allowed memory (MiB). Source: the Amazon ECS developer
# guide, "Task CPU and memory" (Linux platform); checked 2025. Deliberately not imported from
# dask_aws.fargate: the local AWS stands in for AWS, so it is an oracle for the product's
# table, not a reader of it (tests/local/test_units.py checks the two transcriptions agree).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

MAX_RUN_TASK_COUNT = 10
MAX_DESCRIBE_TASKS = 100
MAX_STARTED_BY = 36


class EcsError(ECSException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def client_error(message: str) -> EcsError:
    return EcsError("ClientException", message)


def invalid_parameter(message: str) -> EcsError:
    return EcsError("InvalidParameterException", message)


_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(vcpu|gb)?\s*$", re.IGNORECASE)


def parse_units(value: str | int | None, unit: str) -> int | None:
    """Task cpu/memory as ECS accepts them: "1024", "1 vCPU", "2 GB" -> cpu units / MiB."""
    if value is None:
        return None
    match = _UNIT.match(str(value))
    if not match:
        return -1
    number = float(match.group(1))
    if match.group(2):
        if match.group(2).lower() != unit:
            return -1
        number *= 1024
    return int(number)


# ECS: "Up to 255 letters, numbers, hyphens, underscores, colons, periods, forward
# slashes, and number signs"; '@' introduces a digest.
IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:./#@-]*$")


def validate_task_definition(
    requires_compatibilities: Sequence[str] | None,
    network_mode: str | None,
    cpu: str | None,
    memory: str | None,
    container_definitions: Iterable[dict[str, Any]],
    execution_role_arn: str | None,
) -> None:
    definitions = list(container_definitions)
    for definition in definitions:
        image = str(definition.get("image", ""))
        if len(image) > 255:
            raise client_error("Container.image should not be longer than 255 characters.")
        if not IMAGE.match(image):
            raise client_error("Container.image contains invalid characters.")
    if not execution_role_arn and any(d.get("secrets") for d in definitions):
        raise client_error(
            "When you are specifying container secrets, you must also specify a value for "
            "'executionRoleArn'."
        )
    if not requires_compatibilities or "FARGATE" not in requires_compatibilities:
        return
    if network_mode != "awsvpc":
        raise client_error("Fargate only supports network mode 'awsvpc'.")
    if cpu is None:
        raise client_error("Fargate requires that 'cpu' be defined at the task level.")
    if memory is None:
        raise client_error("Fargate requires that 'memory' be defined at the task level.")
    cpu_units = parse_units(cpu, "vcpu")
    memory_mib = parse_units(memory, "gb")
    if cpu_units not in FARGATE_SIZES or memory_mib not in FARGATE_SIZES[cpu_units]:
        raise client_error(
            f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
            "See the Amazon ECS documentation for the valid values."
        )
    for definition in definitions:
        log = definition.get("logConfiguration") or {}
        if log.get("logDriver") == "awslogs" and not execution_role_arn:
            raise client_error(
                "Fargate requires task definition to have execution role ARN to support log "
                "driver awslogs."
            )


def validate_run_task(
    count: int,
    started_by: str | None,
    task_def: Any,
    cluster: Any,
    launch_type: str | None,
    capacity_provider_strategy: Sequence[dict[str, Any]] | None,
    network_configuration: dict[str, Any] | None,
    ec2_backend: Any,
) -> None:
    if count < 1 or count > MAX_RUN_TASK_COUNT:
        raise invalid_parameter(f"count must be between 1 and {MAX_RUN_TASK_COUNT}.")
    if started_by and len(started_by) > MAX_STARTED_BY:
        raise invalid_parameter(f"startedBy must be at most {MAX_STARTED_BY} characters long.")
    if task_def.status != "ACTIVE":
        raise client_error("TaskDefinition is inactive")
    compatibilities = task_def.requires_compatibilities or ["EC2"]
    if launch_type and launch_type not in compatibilities:
        raise invalid_parameter(f"Task definition does not support launch_type {launch_type}.")
    strategy = capacity_provider_strategy or []
    if strategy and not launch_type:
        associated = set(cluster.capacity_providers or [])
        for item in strategy:
            provider = item.get("capacityProvider")
            if provider not in associated:
                raise invalid_parameter(
                    "The specified capacity provider strategy cannot contain a capacity "
                    "provider that is not associated with the cluster. Associate the capacity "
                    "provider with the cluster or specify a valid capacity provider and try "
                    "again."
                )
            if provider in ("FARGATE", "FARGATE_SPOT") and "FARGATE" not in compatibilities:
                raise invalid_parameter("Task definition does not support launch_type FARGATE.")
    awsvpc = (network_configuration or {}).get("awsvpcConfiguration")
    if task_def.network_mode == "awsvpc" and awsvpc:
        subnets = awsvpc.get("subnets") or []
        if not subnets:
            raise invalid_parameter("subnets can not be empty.")
        for subnet in subnets:
            try:
                ec2_backend.get_subnet(subnet)
            except Exception as exc:
                raise invalid_parameter(
                    f"Error retrieving subnet information for [{subnet}]: The subnet ID "
                    f"'{subnet}' does not exist (ErrorCode: InvalidSubnetID.NotFound)"
                ) from exc
        for group in awsvpc.get("securityGroups") or []:
            if ec2_backend.get_security_group_from_id(group) is None:
                raise invalid_parameter(
                    f"Error retrieving security group information for [{group}]: The security "
                    f"group '{group}' does not exist (ErrorCode: InvalidGroup.NotFound)"
                )


def validate_container_instances(fargate: bool, instances: Iterable[Any]) -> None:
    """A RunTask that is not for Fargate needs an ACTIVE container instance. AWS refuses it
    with this InvalidParameterException (moto raised a bare Exception: HTTP 500). A custom
    capacity provider with managed scaling would wait for an instance on AWS instead; the
    local AWS has no Auto Scaling behind it, so it refuses that too."""
    if not fargate and not any(getattr(i, "status", None) == "ACTIVE" for i in instances):
        raise invalid_parameter("No Container Instances were found in your cluster.")


def validate_describe_tasks(tasks: Sequence[str]) -> None:
    if len(tasks) > MAX_DESCRIBE_TASKS:
        raise invalid_parameter(f"taskIds can have at most {MAX_DESCRIBE_TASKS} items.")


def validate_delete_cluster(cluster: Any, tasks: Iterable[Any], services: Iterable[Any]) -> None:
    if any(s.cluster_name == cluster.name and s.status == "ACTIVE" for s in services):
        raise EcsError(
            "ClusterContainsServicesException",
            "The Cluster cannot be deleted while Services are active.",
        )
    if any(t.last_status != "STOPPED" for t in tasks):
        raise EcsError(
            "ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active."
        )


def validate_delete_security_group(group_id: str, network_interfaces: Iterable[Any]) -> None:
    for eni in network_interfaces:
        if any(getattr(g, "id", None) == group_id for g in getattr(eni, "_group_set", [])):
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
