"""A simulated EC2 fleet: container instances the tests size, and RunTask's EC2 placement.

`add_container_instances` starts EC2 instances in moto and registers them with the cluster
as the ECS agent would: registeredResources/remainingResources CPU, MEMORY, PORTS, PORTS_UDP
and, on GPU instances, `GPU` (type STRINGSET, one id per GPU, named `GPU-<uuid>` as
nvidia-smi and the agent name them), and the attribute `ecs.cpu-architecture` (x86_64 or
arm64, the agent's values).

RunTask with the EC2 launch type places each task on the first ACTIVE instance, in
registration order, with room for the task's CPU, memory and GPUs and whose architecture
matches runtimePlatform.cpuArchitecture (AWS's default for RunTask is random placement; a
fixed order is one of its outcomes and keeps tests deterministic). Requirements are AWS's:
task-level cpu/memory where set, else the containers' sum (memory, else memoryReservation);
GPUs are the containers' `resourceRequirements` of type GPU. A task that fits nowhere is a
`failures` entry {"arn": <container instance ARN>, "reason": "RESOURCE:<name>"} (API failure
reasons, Amazon ECS developer guide: RESOURCE:CPU, RESOURCE:MEMORY, ... ; ATTRIBUTE for a
required attribute no instance has), naming the first instance and the first resource it
lacks in the order CPU, MEMORY, PORTS, GPU. A placed task's containers get `gpuIds` (AWS's
Container.gpuIds) and NVIDIA_VISIBLE_DEVICES (set by the ECS agent); all of it is given back
when the task stops. Call these with the shared lock held.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.ecs.models import Task

from dask_aws.local.strict import parse_units

ARCHITECTURES = {"x86_64": "X86_64", "arm64": "ARM64"}
ARCH_ATTRIBUTE = "ecs.cpu-architecture"
# Ports the agent reserves on every instance (moto's default, as the agent reports them).
RESERVED_PORTS = ["22", "2376", "2375", "51678", "51679"]


def _resource(name: str, value: int | list[str]) -> dict[str, Any]:
    if isinstance(value, list):
        return {
            "name": name,
            "type": "STRINGSET",
            "doubleValue": 0.0,
            "integerValue": 0,
            "longValue": 0,
            "stringSetValue": list(value),
        }
    return {
        "name": name,
        "type": "INTEGER",
        "doubleValue": 0.0,
        "integerValue": value,
        "longValue": 0,
    }


def resources(cpu: int, memory: int, gpu_ids: list[str]) -> list[dict[str, Any]]:
    listed = [
        _resource("CPU", cpu),
        _resource("MEMORY", memory),
        _resource("PORTS", list(RESERVED_PORTS)),
        _resource("PORTS_UDP", []),
    ]
    if gpu_ids:
        listed.append(_resource("GPU", gpu_ids))
    return listed


def add_container_instances(
    ecs: Any,
    ec2: Any,
    cluster: str,
    count: int = 1,
    cpu: int = 4096,
    memory: int = 16384,
    gpus: int = 0,
    architecture: str = "x86_64",
) -> list[str]:
    """Start `count` EC2 instances and register them with `cluster`; their ARNs."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}")
    if count < 1 or cpu < 0 or memory < 0 or gpus < 0:
        raise ValueError("count must be >= 1 and cpu, memory, gpus >= 0")
    ecs._get_cluster(cluster)  # ClusterNotFoundException, as RegisterContainerInstance
    image = next(iter(ec2.amis))
    kind = "g4dn.12xlarge" if gpus else ("m6g.xlarge" if architecture == "arm64" else "m5.xlarge")
    reservation = ec2.run_instances(
        image, count, None, [], instance_type=kind, is_instance_type_default=False
    )
    arns = []
    for instance in reservation.instances:
        registered = ecs.register_container_instance(cluster, instance.id)
        gpu_ids = [f"GPU-{uuid.uuid4()}" for _ in range(gpus)]
        registered.registered_resources = resources(cpu, memory, gpu_ids)
        registered.remaining_resources = resources(cpu, memory, gpu_ids)
        registered.attributes[ARCH_ATTRIBUTE] = architecture
        arns.append(registered.container_instance_arn)
    return arns


# -- requirements and placement --------------------------------------------------------------
def requirements(task_def: Any, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """What a task needs of a container instance, as AWS counts it."""
    overrides = overrides or {}
    definitions = list(task_def.container_definitions)
    cpu = parse_units(overrides.get("cpu") or task_def.cpu, "vcpu")
    memory = parse_units(overrides.get("memory") or task_def.memory, "gb")
    if cpu is None or cpu < 0:
        cpu = sum(int(d.get("cpu") or 0) for d in definitions)
    if memory is None or memory < 0:
        memory = sum(int(d.get("memory") or d.get("memoryReservation") or 0) for d in definitions)
    gpus = sum(
        int(r.get("value") or 0)
        for d in definitions
        for r in d.get("resourceRequirements") or []
        if r.get("type") == "GPU"
    )
    ports = [
        str(m["hostPort"])
        for d in definitions
        for m in d.get("portMappings") or []
        if m.get("hostPort")
    ]
    platform = getattr(task_def, "runtime_platform", None) or {}
    return {
        "CPU": cpu,
        "MEMORY": memory,
        "GPU": gpus,
        "PORTS": ports,
        "PORTS_UDP": [],
        "ARCH": platform.get("cpuArchitecture"),
    }


def _remaining(instance: Any, name: str) -> Any:
    for resource in instance.remaining_resources:
        if resource.get("name") == name:
            if resource.get("type") == "STRINGSET":
                return resource.setdefault("stringSetValue", [])
            return resource.get("integerValue", 0)
    return [] if name in ("GPU", "PORTS") else 0


def shortfall(instance: Any, needs: dict[str, Any]) -> str | None:
    """Why `instance` cannot take the task now (a failure reason), or None."""
    arch = needs.get("ARCH")
    if arch and ARCHITECTURES.get(str(instance.attributes.get(ARCH_ATTRIBUTE, "x86_64"))) != arch:
        return "ATTRIBUTE"
    if needs["CPU"] > _remaining(instance, "CPU"):
        return "RESOURCE:CPU"
    if needs["MEMORY"] > _remaining(instance, "MEMORY"):
        return "RESOURCE:MEMORY"
    if set(needs["PORTS"]) & set(_remaining(instance, "PORTS")):
        return "RESOURCE:PORTS"
    if needs["GPU"] > len(_remaining(instance, "GPU")):
        return "RESOURCE:GPU"
    return None


def place(instances: list[Any], needs: dict[str, Any]) -> tuple[Any | None, dict[str, str] | None]:
    """(the instance the task goes to, None) or (None, the failure RunTask reports)."""
    active = [i for i in instances if i.status == "ACTIVE"]
    for instance in active:
        if shortfall(instance, needs) is None:
            return instance, None
    first = active[0]
    return None, {"arn": first.container_instance_arn, "reason": str(shortfall(first, needs))}


def take(ecs: Any, instance: Any, needs: dict[str, Any]) -> list[str]:
    """Reserve the task's resources on `instance`; the GPU ids it gets."""
    ecs.update_container_instance_resources(instance, needs)  # CPU, MEMORY, PORTS, count
    free = _remaining(instance, "GPU")
    gpu_ids = free[: needs["GPU"]]
    del free[: needs["GPU"]]
    return list(gpu_ids)


def give_back(ecs: Any, task: Any) -> None:
    """A stopped task's resources back to its instance (once)."""
    needs = getattr(task, "resource_requirements", None)
    arn = getattr(task, "container_instance_arn", None)
    if not arn or not needs or getattr(task, "_fleet_released", False):
        return
    task._fleet_released = True
    instance = ecs.container_instances.get(task.cluster_name, {}).get(arn.rsplit("/", 1)[-1])
    if instance is None:
        return
    ecs.update_container_instance_resources(instance, needs, removing=True)
    gpu_ids = sorted({g for c in task.containers for g in getattr(c, "gpu_ids", None) or []})
    _remaining(instance, "GPU").extend(gpu_ids)


def assign_gpus(task: Any, task_def: Any, gpu_ids: list[str]) -> None:
    """Hand the task's GPU ids to its containers, in definition order, as many as each asks."""
    free = list(gpu_ids)
    wanted = {
        d.get("name"): sum(
            int(r.get("value") or 0)
            for r in d.get("resourceRequirements") or []
            if r.get("type") == "GPU"
        )
        for d in task_def.container_definitions
    }
    for container in task.containers:
        count = wanted.get(container.name, 0)
        if count:
            container.gpu_ids = free[:count]
            del free[:count]


# -- RunTask on the EC2 launch type (local/patches.py) ----------------------------------------
def slots(
    self: Any, cluster: Any, task_def: Any, overrides: dict[str, Any] | None, count: int
) -> list[tuple[tuple[Any, dict[str, Any], list[str]] | None, dict[str, str] | None]]:
    """For each task: ((instance, requirements, GPU ids), None) once its resources are
    reserved, or (None, the failure RunTask reports)."""
    instances = list(self.container_instances.get(cluster.name, {}).values())
    needs = requirements(task_def, overrides)
    result: list[tuple[tuple[Any, dict[str, Any], list[str]] | None, dict[str, str] | None]] = []
    for _ in range(count):
        instance, failure = place(instances, needs)
        if instance is None:
            result.append((None, failure))
        else:
            result.append(((instance, needs, take(self, instance, needs)), None))
    return result


def create_task(
    self: Any,
    cluster: Any,
    task_def: Any,
    slot: tuple[Any, dict[str, Any], list[str]] | None,
    overrides: dict[str, Any] | None,
    started_by: str,
    tags: list[dict[str, str]] | None,
    launch_type: str | None,
    configuration: dict[str, Any] | None,
    group: str | None,
    provider: str | None,
) -> Any:
    """A task on the container instance `slot` chose, as moto's own EC2 branch builds one
    (moto would pick its instance itself, by CPU/memory/ports only)."""
    assert slot is not None
    instance, needs, gpu_ids = slot
    task: Any = Task(
        cluster,
        task_def,
        instance.container_instance_arn,
        needs,
        backend=self,
        group=group or f"family:{task_def.family}",
        overrides=overrides or {},
        started_by=started_by or "",
        tags=tags or [],
        launch_type=launch_type or "",
        networking_configuration=configuration,
        capacity_provider_name=provider,
    )
    task._fleet_gpu_ids = gpu_ids
    self.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    return task
