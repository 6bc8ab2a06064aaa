"""ECS requests AWS refuses and moto accepts (or refuses with other words), checked on the
request's own parameters (local/request_checks.py runs them before moto).

Wording: where a message is quoted below it is AWS's, as seen in error output quoted in
public issue threads (named per check); where we found no such quote the message is ours and
says so, and only the error code is AWS's (the ECS API reference lists it for the action).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from moto.ecs.exceptions import ClusterNotFoundException

from dask_aws.local import validation_platform
from dask_aws.local.strict import FARGATE_SIZES, EcsError, client_error, parse_units

MAX_TAGS = 50  # API_TagResource: "Maximum number of tags per resource - 50"


def invalid(message: str) -> EcsError:
    return EcsError("InvalidParameterException", message)


def check_tags(tags: Sequence[dict[str, Any]] | None) -> None:
    """API_TagResource: at most 50 tags; "aws:" in any case is reserved for keys and values.
    The messages are ours (AWS's not found); the code is the one ECS lists for bad input."""
    tags = tags or []
    if len(tags) > MAX_TAGS:
        raise invalid(f"The number of tags ({len(tags)}) exceeds the limit of {MAX_TAGS}.")
    for tag in tags:
        for part in (tag.get("key") or "", tag.get("value") or ""):
            if part.lower().startswith("aws:"):
                raise invalid(f"Tag '{part}' uses the 'aws:' prefix, which is reserved.")


# -- RegisterTaskDefinition ------------------------------------------------------------------
def _check_memory(definitions: Sequence[dict[str, Any]], task_memory: int | None) -> None:
    for d in definitions:
        memory, reservation = d.get("memory"), d.get("memoryReservation")
        if memory is not None and reservation is not None and memory < reservation:
            # ContainerDefinition.memory: memory must be >= memoryReservation. Our message.
            raise client_error(
                f"Invalid 'memory' setting for container '{d.get('name')}': memory must be "
                "greater than or equal to memoryReservation."
            )
        if task_memory is not None and memory is not None and memory > task_memory:
            # pulumi/pulumi-awsx#1220
            raise client_error(
                f"The 'memory' setting for container '{d.get('name')}' is greater than for "
                "the task."
            )
    reserved = sum(d.get("memoryReservation") or 0 for d in definitions)
    if task_memory is not None and reserved > task_memory:
        # cloudnativedaysjp/dreamkast-infra#4766
        raise client_error(
            "The sum of all container 'memoryReservation' values cannot be greater than the "
            "value of the task 'memory'."
        )


def _check_dependencies(definitions: Sequence[dict[str, Any]]) -> None:
    by_name = {d.get("name"): d for d in definitions}
    for d in definitions:
        for dependency in d.get("dependsOn") or []:
            target = by_name.get(dependency.get("containerName"))
            if target is None:
                # eagletmt/hako#99, dagster-io/dagster#6926 (the stray "+" is AWS's)
                raise client_error(
                    f"Cannot depend on container + '{dependency.get('containerName')}' "
                    "because it does not exist"
                )
            if dependency.get("condition") in ("SUCCESS", "COMPLETE") and target.get(
                "essential", True
            ):
                # boto/boto3#2436
                raise client_error(
                    "A dependency container with SUCCESS or COMPLETE condition cannot be an "
                    "essential container"
                )


def _check_ports(definitions: Sequence[dict[str, Any]], network_mode: str | None) -> None:
    if network_mode != "awsvpc":
        return
    for d in definitions:
        for mapping in d.get("portMappings") or []:
            host = mapping.get("hostPort")
            if host not in (None, 0) and host != mapping.get("containerPort"):
                # aws/amazon-ecs-cli#1014, pulumi/pulumi-awsx#935
                raise client_error(
                    "When networkMode=awsvpc, the host ports and container ports in port "
                    "mappings must match."
                )


def register_task_definition(request: Any) -> None:
    definitions: list[dict[str, Any]] = request._get_param("containerDefinitions") or []
    memory = parse_units(request._get_param("memory"), "gb")
    _check_memory(definitions, memory if memory is not None and memory > 0 else None)
    _check_dependencies(definitions)
    _check_ports(definitions, request._get_param("networkMode"))
    for constraint in request._get_param("placementConstraints") or []:
        if constraint.get("type") != "memberOf":
            # aws-samples/aws-cdk-examples#628: task definitions take memberOf only.
            raise client_error(f"constraint.type '{constraint.get('type')}' is not supported.")
    check_tags(request._get_param("tags"))
    validation_platform.check_task_definition(
        request._get_param("runtimePlatform"),
        request._get_param("ephemeralStorage"),
        request._get_param("requiresCompatibilities"),
    )


def validate_container_defs(
    memory: str | None,
    container_definitions: list[dict[str, Any]],
    requires_compatibilities: list[str] | None,
) -> None:
    """moto's own container check, less its EC2 rule: moto wants `memory` on every EC2
    container, but AWS takes memoryReservation alone (API_ContainerDefinition,
    memoryReservation: "If a task-level memory value is not specified, you must specify a
    non-zero integer for one or both of memory or memoryReservation"; AWS's own refusal
    reads "At least one of 'memory' or 'memoryReservation' must be specified")."""
    from dask_aws.local.patches import original  # patches imports this module

    original(validate_container_defs)(memory, container_definitions, None)


# -- RunTask ---------------------------------------------------------------------------------
def _is_fargate(launch_type: str | None, strategy: Sequence[dict[str, Any]] | None) -> bool:
    providers = {s.get("capacityProvider") for s in strategy or []}
    return launch_type == "FARGATE" or bool(providers & {"FARGATE", "FARGATE_SPOT"})


def _check_overrides(overrides: dict[str, Any], task_def: Any, fargate: bool) -> None:
    names = {d.get("name") for d in task_def.container_definitions}
    for override in overrides.get("containerOverrides") or []:
        if override.get("name") not in names:
            # azavea/django-ecsmanage#21
            raise invalid(
                f"Override for container named {override.get('name')} is not a container in "
                "the TaskDefinition."
            )
    if fargate and (overrides.get("cpu") or overrides.get("memory")):
        cpu = parse_units(overrides.get("cpu") or task_def.cpu, "vcpu")
        memory = parse_units(overrides.get("memory") or task_def.memory, "gb")
        if cpu not in FARGATE_SIZES or memory not in FARGATE_SIZES[cpu]:
            # The overridden size must be a Fargate pair; our message (AWS's not found).
            raise invalid(
                f"No Fargate configuration exists for given values: {cpu} CPU, {memory} "
                "memory (task overrides)."
            )


def run_task(request: Any) -> None:
    launch_type = request._get_param("launchType")
    strategy = request._get_param("capacityProviderStrategy")
    if launch_type and strategy:
        # PrefectHQ/prefect#4884 (RunTask's reply; moto words it differently)
        raise invalid("You may choose a capacity provider or a launch type but not both.")
    fargate = _is_fargate(launch_type, strategy)
    if fargate and request._get_param("placementConstraints"):
        # GetSimpl/cloudlift#138 (CreateService's reply, which RunTask shares)
        raise invalid("Placement constraints are not supported with FARGATE launch type.")
    if fargate and request._get_param("placementStrategy"):
        # By analogy with the constraints' message; AWS's own wording not found.
        raise invalid("Placement strategies are not supported with FARGATE launch type.")
    check_tags(request._get_param("tags"))
    cluster = request.ecs_backend._get_cluster(request._get_param("cluster") or "default")
    if cluster.status != "ACTIVE":
        # moto keeps a deleted cluster as INACTIVE and starts tasks in it; AWS finds no
        # cluster to start them in (the same reply as for a name never created).
        raise ClusterNotFoundException()
    task_def = request.ecs_backend.describe_task_definition(request._get_param("taskDefinition"))
    network = request._get_param("networkConfiguration")
    if network and task_def.network_mode != "awsvpc":
        # muya/amazon-ecs-run-task#7
        raise invalid(
            "Network Configuration is not valid for the given `networkMode` of this task "
            "definition."
        )
    overrides = request._get_param("overrides") or {}
    _check_overrides(overrides, task_def, fargate)
    providers = {s.get("capacityProvider") for s in strategy or []}
    validation_platform.check_run_task(task_def, overrides, providers)


def run_task_after(request: Any, result: Any) -> None:
    """AWS's Task says whether ECS Exec is on (enableExecuteCommand, API_Task); moto drops
    the flag. Set on the task itself, so DescribeTasks reports it too."""
    enabled = bool(request._get_param("enableExecuteCommand"))
    for task in (getattr(result, "result", None) or {}).get("tasks", []):
        task.enable_execute_command = enabled


def tagged(request: Any) -> None:
    check_tags(request._get_param("tags"))


CHECKS: dict[str, Callable[[Any], None]] = {
    "RegisterTaskDefinition": register_task_definition,
    "RunTask": run_task,
    "CreateCluster": tagged,
    "TagResource": tagged,
}
AFTER: dict[str, Callable[[Any, Any], None]] = {"RunTask": run_task_after}
