"""Patches of moto's ECS and EC2 backends that connect them to the data plane.

Installed once in the process that runs the local AWS (the `dask-aws local up` process, or
the child process `LocalAws` starts), never in a test process that may use `mock_aws`.
Besides wiring RunTask/StopTask/DescribeTasks to the data plane they work around moto quirks:
tasks no longer drift toward STOPPED on describe (the `ecs::task` state manager is frozen and
`describe_tasks` never advances), a Fargate task definition with only task-level memory can
be run, DescribeTasks looks tasks up by ARN or id within the cluster (moto scans every task
of every cluster) and reports unknown ones as MISSING failures, and StopTask of an unknown
task is a 400 InvalidParameterException (moto answers 500). ListTasks lists one cluster's
tasks, defaults to desiredStatus RUNNING and pages by maxResults/nextToken like AWS; RunTask
honours clientToken (idempotency), propagateTags=TASK_DEFINITION and enableECSManagedTags.
The default VPC gets AWS's internet gateway and 0.0.0.0/0 route, which moto leaves out; every
ENI gets a private DNS name (moto's missing one made RunTask fail in VPCs without DNS
hostnames). RunTask also admits tasks as AWS does: the Fargate vCPU quotas (local/quotas.py)
and free subnet addresses (local/subnets.py).
"""

from __future__ import annotations

import base64
import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.models.vpcs import VPCBackend
from moto.ec2.utils import generate_dns_from_ip
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import AccountSetting, EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api import state_manager

from dask_aws.local import fleet, quotas, request_checks, strict, subnets, validation_ecs
from dask_aws.local.context import LocalContext, active
from dask_aws.local.faults import CAPACITY_REASON


def _context() -> LocalContext:
    context = active()
    assert context is not None, "the local AWS is not running in this process"
    return context


def freeze_task_states() -> None:
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})


def _find_task(backend: Any, cluster_name: str, ref: str) -> Any:
    tasks = backend.tasks.get(cluster_name, {})
    task = tasks.get(ref)
    if task is not None:
        return task
    runtime = _context().dataplane.lookup(ref)
    if runtime is not None and runtime.cluster == cluster_name:
        return runtime.task
    task_id = ref.rsplit("/", 1)[-1]
    for arn, candidate in tasks.items():
        if arn.rsplit("/", 1)[-1] == task_id:
            return candidate
    return None


# -- ECS backend ----------------------------------------------------------------------------
def register_task_definition(
    self: Any, family: str, container_definitions: list[dict[str, Any]], **kwargs: Any
) -> Any:
    strict.validate_task_definition(
        kwargs.get("requires_compatibilities"),
        kwargs.get("network_mode"),
        kwargs.get("cpu"),
        kwargs.get("memory"),
        container_definitions or [],
        kwargs.get("execution_role_arn"),
    )
    return original(register_task_definition)(self, family, container_definitions, **kwargs)


def calculate_task_resource_requirements(task_definition: Any) -> dict[str, Any]:
    # moto adds up container memory and fails (TypeError, HTTP 500) when a Fargate task
    # definition sets memory only at task level; count such containers as 0 MiB.
    shim = copy.copy(task_definition)
    keys = ("memory", "memoryReservation", "Memory", "MemoryReservation")
    shim.container_definitions = [
        d if any(d.get(k) is not None for k in keys) else {**d, "memoryReservation": 0}
        for d in task_definition.container_definitions
    ]
    result: dict[str, Any] = original(calculate_task_resource_requirements)(shim)
    return result


def _with_default_group(ec2: Any, config: dict[str, Any] | None) -> dict[str, Any] | None:
    """AWS puts a task that names no security group in its VPC's default group; moto
    would fail with a KeyError (an HTTP 500)."""
    awsvpc = (config or {}).get("awsvpcConfiguration") or {}
    if awsvpc.get("securityGroups") or not awsvpc.get("subnets"):
        return config
    vpc = ec2.get_subnet(awsvpc["subnets"][0]).vpc_id
    default = ec2.get_security_group_from_name("default", vpc_id=vpc)
    return {**(config or {}), "awsvpcConfiguration": {**awsvpc, "securityGroups": [default.id]}}


def run_task(
    self: Any,
    cluster_str: str,
    task_definition_str: str,
    count: int,
    overrides: dict[str, Any] | None,
    started_by: str,
    tags: list[dict[str, str]] | None,
    launch_type: str | None,
    networking_configuration: dict[str, Any] | None = None,
    group: str | None = None,
    platform_version: str | None = None,
    capacity_provider_strategy: list[dict[str, Any]] | None = None,
) -> list[Any]:
    context = _context()
    cluster = self._get_cluster(cluster_str)
    task_def = self.describe_task_definition(task_definition_str)
    strategy = capacity_provider_strategy
    if not launch_type and not strategy:
        strategy = cluster.default_capacity_provider_strategy
    ec2 = ec2_backends[self.account_id][self.region_name]
    strict.validate_run_task(
        count, started_by, task_def, cluster, launch_type, strategy, networking_configuration, ec2
    )
    provider = strategy[0]["capacityProvider"] if strategy else None
    strict.validate_container_instances(
        launch_type == "FARGATE" or provider in ("FARGATE", "FARGATE_SPOT"),
        self.container_instances.get(cluster.name, {}).values(),
    )
    networking_configuration = _with_default_group(ec2, networking_configuration)
    extra = context.request_extra()
    token = extra.get("client_token")
    request_key = repr(
        (task_def.arn, count, overrides, started_by, launch_type, strategy, tags, group)
    )
    if token:
        previous = context.dataplane.client_tokens.get((cluster.arn, token))
        if previous is not None:
            if previous[0] != request_key:
                raise strict.EcsError(
                    "ConflictException",
                    "The clientToken is already in use with a different RunTask request.",
                )
            return [rt.task for arn in previous[1] if (rt := context.dataplane.lookup(arn))]
    # Admission, as AWS decides it: the account's Fargate vCPU quota first, then capacity
    # (injected shortfalls, or no Fargate Spot capacity at all); each task refused is a
    # `failures` entry of an HTTP 200 reply.
    bucket = quotas.bucket_of(launch_type, strategy)
    cpu = max(strict.parse_units((overrides or {}).get("cpu") or task_def.cpu, "vcpu") or 0, 0)
    fits = context.quotas.admit(self.account_id, self.region_name, bucket, cpu, count)
    short = context.faults.take_capacity_failures(provider, fits) if fits else 0
    failures: list[dict[str, str]] = [{"reason": quotas.VCPU_LIMIT_REASON}] * (count - fits) + [
        {"reason": CAPACITY_REASON}
    ] * short
    fargate = launch_type == "FARGATE" or provider in ("FARGATE", "FARGATE_SPOT")
    # EC2: a container instance with room for each task (local/fleet.py), or a failure.
    slots = None if fargate else fleet.slots(self, cluster, task_def, overrides, fits - short)
    if slots is not None:
        failures += [failure for _, failure in slots if failure is not None]
        slots = [slot for slot in slots if slot[1] is None]
    extra["run_task_failures"] = failures
    placed = fits - short if slots is None else len(slots)
    tasks: list[Any] = []
    for (subnet, no_address), group_of in groupby(
        _placements(ec2, task_def, networking_configuration, placed)
    ):
        size = len(list(group_of))
        configuration = _subnet_first(networking_configuration, subnet)
        if slots is None:
            created: list[Any] = original(run_task)(
                self,
                cluster_str,
                task_definition_str,
                size,
                overrides,
                started_by,
                tags,
                launch_type,
                configuration,
                group,
                platform_version,
                capacity_provider_strategy,
            )
        else:
            created = [
                fleet.create_task(
                    self,
                    cluster,
                    task_def,
                    slots.pop(0)[0],
                    overrides,
                    started_by,
                    tags,
                    launch_type,
                    configuration,
                    group,
                    provider,
                )
                for _ in range(size)
            ]
        for task in created:
            task.tags = _task_tags(task_def, cluster, tags, extra)
            gpu_ids = getattr(task, "_fleet_gpu_ids", [])
            runtime = context.dataplane.adopt(task, task_def, ec2)
            fleet.assign_gpus(task, task_def, gpu_ids)
            context.quotas.track(
                self.account_id, self.region_name, bucket, task.task_arn, cpu, runtime.done
            )
            if no_address is not None:
                _fail_for_address(ec2, runtime, no_address)
        tasks += created
    if token:
        context.dataplane.client_tokens[(cluster.arn, token)] = (
            request_key,
            [t.task_arn for t in tasks],
        )
    return tasks


def _placements(
    ec2: Any, task_def: Any, config: dict[str, Any] | None, count: int
) -> list[tuple[str | None, str | None]]:
    """(subnet to create the task's ENI in, why it cannot start) for each task: the subnet
    is None where the configuration stands as given (no awsvpc), the reason is set where no
    subnet has a free address (see local/subnets.py)."""
    awsvpc = (config or {}).get("awsvpcConfiguration") or {}
    subnet_ids = list(awsvpc.get("subnets") or [])
    if task_def.network_mode != "awsvpc" or not subnet_ids:
        return [(None, None)] * count
    public = awsvpc.get("assignPublicIp") == "ENABLED"
    result: list[tuple[str | None, str | None]] = []
    for placed in subnets.place(ec2, subnet_ids, count):
        if placed is None:
            result.append((subnet_ids[0], subnets.no_address_reason(subnet_ids[0], public)))
        else:
            result.append((placed, None))
    return result


def _subnet_first(config: dict[str, Any] | None, subnet: str | None) -> dict[str, Any] | None:
    """The configuration with `subnet` first: moto creates a task's ENI in the first one, and
    the task keeps it (AWS's Task shows no networkConfiguration; egress.py judges the first
    subnet as the task's own)."""
    if subnet is None or config is None:
        return config
    awsvpc = config["awsvpcConfiguration"]
    ordered = [subnet] + [s for s in awsvpc["subnets"] if s != subnet]
    return {**config, "awsvpcConfiguration": {**awsvpc, "subnets": ordered}}


def _fail_for_address(ec2: Any, runtime: Any, reason: str) -> None:
    """A task whose ENI could not get an address: it has none (its ENI goes at once, so the
    subnet's count stays right) and the data plane stops it as TaskFailedToStart."""
    runtime.start_failure = reason
    if runtime.eni_id:
        with contextlib.suppress(Exception):
            ec2.delete_network_interface(runtime.eni_id)


def _task_tags(
    task_def: Any, cluster: Any, tags: list[dict[str, str]] | None, extra: dict[str, Any]
) -> list[dict[str, str]]:
    """propagateTags=TASK_DEFINITION and enableECSManagedTags, which moto ignores."""
    merged: dict[str, str] = {}
    if extra.get("propagate_tags") == "TASK_DEFINITION":
        for tag in task_def.tags or []:
            merged[tag["key"]] = tag["value"]
    for tag in tags or []:
        merged[tag["key"]] = tag["value"]
    if extra.get("managed_tags"):
        merged["aws:ecs:clusterName"] = cluster.name
    return [{"key": k, "value": v} for k, v in merged.items()]


def list_tasks(
    self: Any,
    cluster_str: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    started_by: str | None = None,
    service_name: str | None = None,
    desiredStatus: str | None = None,
) -> list[Any]:
    """Tasks of one cluster only (moto scans all and matches cluster names as substrings)."""
    if cluster_str:
        cluster = self._get_cluster(cluster_str)
        candidates = list(self.tasks.get(cluster.name, {}).values())
    else:
        candidates = [t for tasks in self.tasks.values() for t in tasks.values()]
    result = []
    for task in candidates:
        if container_instance and container_instance not in (task.container_instance_arn or ""):
            continue
        if family and task.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
            continue
        if started_by and task.started_by != started_by:
            continue
        if desiredStatus and task.desired_status != desiredStatus:
            continue
        result.append(task)
    return result


def describe_tasks(self: Any, cluster_str: str, tasks: list[str]) -> list[Any]:
    cluster = self._get_cluster(cluster_str)
    if not tasks:
        raise InvalidParameterException("Tasks cannot be empty.")
    strict.validate_describe_tasks(tasks)
    found: list[Any] = []
    seen: set[int] = set()
    missing: list[dict[str, str]] = []
    for ref in tasks:
        task = _find_task(self, cluster.name, ref)
        if task is None:
            missing.append({"arn": ref, "reason": "MISSING"})
        elif id(task) not in seen:
            seen.add(id(task))
            found.append(task)
    _context().request_extra()["describe_tasks_failures"] = missing
    return found


def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
    cluster = self._get_cluster(cluster_str)
    task = _find_task(self, cluster.name, task_str)
    if task is None:
        raise InvalidParameterException("The referenced task was not found.")
    dataplane = _context().dataplane
    if dataplane.lookup(task.task_arn) is None:
        return original(stop_task)(self, cluster_str, task_str, reason)
    dataplane.stop(task.task_arn, "UserInitiated", reason or None)
    return task


def delete_cluster(self: Any, cluster_str: str) -> Any:
    cluster = self._get_cluster(cluster_str)
    strict.validate_delete_cluster(
        cluster, self.tasks.get(cluster.name, {}).values(), self.services.values()
    )
    return original(delete_cluster)(self, cluster_str)


# -- ECS responses: report failures moto always leaves empty ---------------------------------
def run_task_response(self: Any) -> Any:
    extra = _context().request_extra()
    extra["client_token"] = self._get_param("clientToken")
    extra["propagate_tags"] = self._get_param("propagateTags")
    extra["managed_tags"] = bool(self._get_param("enableECSManagedTags"))
    result = original(run_task_response)(self)
    failures = _context().request_extra().get("run_task_failures")
    if failures:
        result.result["failures"] = failures
    return result


def describe_tasks_response(self: Any) -> Any:
    result = original(describe_tasks_response)(self)
    failures = _context().request_extra().get("describe_tasks_failures")
    if failures:
        result.result["failures"] = failures
    return result


def list_tasks_response(self: Any) -> Any:
    """ListTasks as AWS: desiredStatus defaults to RUNNING; pages of maxResults (<= 100)."""
    max_results = self._get_param("maxResults")
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    page = int(max_results or 100)
    token = self._get_param("nextToken")
    try:
        offset = int(base64.b64decode(token).decode()) if token else 0
    except ValueError as exc:
        raise InvalidParameterException("Invalid token") from exc
    tasks = self.ecs_backend.list_tasks(
        self._get_param("cluster", "default"),
        self._get_param("containerInstance"),
        self._get_param("family"),
        self._get_param("startedBy"),
        self._get_param("serviceName"),
        self._get_param("desiredStatus") or "RUNNING",
    )
    arns = [t.task_arn for t in tasks]
    result: dict[str, Any] = {"taskArns": arns[offset : offset + page]}
    if offset + page < len(arns):
        result["nextToken"] = base64.b64encode(str(offset + page).encode()).decode()
    return ActionResult(result)


# -- EC2 ----------------------------------------------------------------------------------------
def delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
    target = group_id
    if target is None and name is not None:
        group = self.get_security_group_by_name_or_id(name)
        target = group.id if group is not None else None
    if target is not None:
        strict.validate_delete_security_group(target, list(self.enis.values()))
    original(delete_security_group)(self, name=name, group_id=group_id)


def create_network_interface(
    self: Any, subnet: Any, private_ip_address: Any, *a: Any, **kw: Any
) -> Any:
    """Every ENI has a private DNS name, as on AWS: enableDnsHostnames decides public DNS
    hostnames only. moto names ENIs only in VPCs with DNS hostnames, and a RunTask into any
    other VPC failed reading the task ENI's name (AttributeError, HTTP 500)."""
    eni = original(create_network_interface)(self, subnet, private_ip_address, *a, **kw)
    if getattr(eni, "private_dns_name", None) is None and eni.private_ip_address:
        eni.private_dns_name = generate_dns_from_ip(eni.private_ip_address)
        for address in eni.private_ip_addresses:
            if address.get("Primary"):
                address.setdefault("PrivateDnsName", eni.private_dns_name)
    return eni


def create_default_vpc(self: Any) -> Any:
    """AWS's default VPC is public: an internet gateway is attached and its main route
    table routes 0.0.0.0/0 to it (no NAT gateway). moto creates neither, which would leave
    every default subnet without a way to pull an image."""
    vpc = original(create_default_vpc)(self)
    gateway = self.create_internet_gateway()
    self.attach_internet_gateway(gateway.id, vpc.id)
    main = next(
        t
        for t in self.route_tables.values()
        if t.vpc_id == vpc.id and t.main_association_id is not None
    )
    self.create_route(main.id, "0.0.0.0/0", gateway_id=gateway.id)
    return vpc


# What AWS reports for settings nobody has put (effectiveSettings=true). moto lists only
# settings put explicitly, which breaks clients (dask-cloudprovider) that read the defaults.
EFFECTIVE_DEFAULTS = {
    "serviceLongArnFormat": "enabled",
    "taskLongArnFormat": "enabled",
    "containerInstanceLongArnFormat": "enabled",
    "awsvpcTrunking": "disabled",
    "containerInsights": "disabled",
    "dualStackIPv6": "disabled",
}


def list_account_settings_response(self: Any) -> Any:
    name = self._get_param("name")
    value = self._get_param("value")
    settings = list(self.ecs_backend.list_account_settings(name, value))
    if self._get_param("effectiveSettings"):
        present = {s.name for s in settings}
        settings += [
            AccountSetting(key, default)
            for key, default in EFFECTIVE_DEFAULTS.items()
            if key not in present
            and key not in self.ecs_backend.account_settings
            and (not name or key == name)
            and (not value or default == value)
        ]
    return ActionResult({"settings": settings})


@dataclass(frozen=True)
class Patch:
    """One moto attribute replaced: `target.name` becomes `replacement`."""

    target: type
    name: str
    replacement: Callable[..., Any]


# A patch is one row here and nothing else: install() and uninstall() iterate the table, and
# a replacement reaches what it replaced through original(), not by name.
PATCHES: tuple[Patch, ...] = (
    Patch(EC2ContainerServiceBackend, "register_task_definition", register_task_definition),
    Patch(
        EC2ContainerServiceBackend,
        "_calculate_task_resource_requirements",
        calculate_task_resource_requirements,
    ),
    Patch(EC2ContainerServiceBackend, "run_task", run_task),
    Patch(EC2ContainerServiceBackend, "describe_tasks", describe_tasks),
    Patch(EC2ContainerServiceBackend, "stop_task", stop_task),
    Patch(EC2ContainerServiceBackend, "delete_cluster", delete_cluster),
    Patch(EC2ContainerServiceBackend, "list_tasks", list_tasks),
    Patch(EC2ContainerServiceResponse, "run_task", run_task_response),
    Patch(EC2ContainerServiceResponse, "describe_tasks", describe_tasks_response),
    Patch(EC2ContainerServiceResponse, "list_tasks", list_tasks_response),
    Patch(EC2ContainerServiceResponse, "list_account_settings", list_account_settings_response),
    Patch(SecurityGroupBackend, "delete_security_group", delete_security_group),
    Patch(VPCBackend, "create_default_vpc", create_default_vpc),
    Patch(NetworkInterfaceBackend, "create_network_interface", create_network_interface),
    # Request checks AWS makes and moto does not (local/request_checks.py), every service.
    Patch(BaseResponse, "call_action", request_checks.call_action),
    Patch(
        EC2ContainerServiceBackend,
        "_validate_container_defs",
        validation_ecs.validate_container_defs,
    ),
)

# What each patch replaced, as found in the class's __dict__ (a staticmethod stays one), so
# uninstall() puts back exactly that.
_replaced: dict[Patch, Any] = {}


def original(replacement: Callable[..., Any]) -> Callable[..., Any]:
    """The moto function `replacement` stands in for, for replacements that delegate to it."""
    for patch, raw in _replaced.items():
        if patch.replacement is replacement:
            return raw.__func__ if isinstance(raw, staticmethod) else raw
    raise RuntimeError(f"{replacement.__name__} is not installed")


def install() -> None:
    """Patch moto (idempotent) and freeze the ECS task state machine."""
    freeze_task_states()
    if _replaced:
        return
    for patch in PATCHES:
        raw = patch.target.__dict__[patch.name]
        _replaced[patch] = raw
        new = (
            staticmethod(patch.replacement) if isinstance(raw, staticmethod) else patch.replacement
        )
        setattr(patch.target, patch.name, new)


def uninstall() -> None:
    """Undo install(): moto's own functions and task state machine again."""
    for patch, raw in _replaced.items():
        setattr(patch.target, patch.name, raw)
    _replaced.clear()
    state_manager.unset_transition("ecs::task")
