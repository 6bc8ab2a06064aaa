"""Keyword arguments (dask-cloudprovider's names) -> a validated DaskAwsClusterSpec.

Everything here is pure: a bad argument fails here, before any AWS call, with a message
that names the argument and says what would be accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from dask_aws.cluster import config
from dask_aws.names import owner_name_error
from dask_aws.spec import (
    DEFAULT_GPU_IMAGE,
    DEFAULT_IMAGE,
    DaskAwsClusterSpec,
    LaunchType,
    WorkerGroupSpec,
)

FARGATE_KIND = "FargateCluster"
ECS_KIND = "ECSCluster"

# Arguments read from dask.config (`dask_aws.<name>`) when not given or given as None.
CONFIGURABLE = (
    "image",
    "n_workers",
    "scheduler_cpu",
    "scheduler_mem",
    "scheduler_timeout",
    "scheduler_extra_args",
    "worker_cpu",
    "worker_mem",
    "worker_nthreads",
    "worker_gpu",
    "worker_extra_args",
    "cluster_arn",
    "execution_role_arn",
    "task_role_arn",
    "task_role_policies",
    "cloudwatch_logs_group",
    "cloudwatch_logs_stream_prefix",
    "cloudwatch_logs_default_retention",
    "vpc",
    "subnets",
    "security_groups",
    "allowed_client_cidrs",
    "environment",
    "tags",
    "region_name",
    "fargate_spot",
    "fargate_use_private_ip",
    "platform_version",
    "security",
    "tls_validity_days",
    "skip_cleanup",
    "startup_timeout",
)
OTHER = (
    "name",
    "secrets",
    "worker_mem_limit",
    "fargate_scheduler",
    "fargate_workers",
    "cpu_architecture",
    "worker_groups",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "find_address_timeout",  # accepted, unused: the address comes from ECS itself
)
UNSUPPORTED = {
    "mount_points": "volumes and mount points are not supported yet",
    "volumes": "volumes and mount points are not supported yet",
    "scheduler_address": "an external scheduler is not supported; dask-aws runs the scheduler "
    "as an ECS task",
    "scheduler_task_kwargs": "raw RunTask arguments are not supported; use the named arguments",
    "worker_task_kwargs": "raw RunTask arguments are not supported; use the named arguments",
    "scheduler_task_definition_arn": "existing task definitions are not supported",
    "worker_task_definition_arn": "existing task definitions are not supported",
}
# Spec paths (as pydantic reports them) -> the argument a person passed.
ARGUMENT_OF = {
    "image": "image",
    "region": "region_name",
    "clusterArn": "cluster_arn",
    "platformVersion": "platform_version",
    "scheduler.cpu": "scheduler_cpu",
    "scheduler.memory": "scheduler_mem",
    "scheduler.env": "environment",
    "scheduler.idleTimeoutSeconds": "scheduler_timeout",
    "workers.replicas": "n_workers",
    "workers.cpu": "worker_cpu",
    "workers.memory": "worker_mem",
    "workers.nthreads": "worker_nthreads",
    "workers.gpu": "worker_gpu",
    "workers.env": "environment",
    "iam.executionRoleArn": "execution_role_arn",
    "iam.taskRoleArn": "task_role_arn",
    "iam.taskRolePolicies": "task_role_policies",
    "network.vpc": "vpc",
    "network.subnets": "subnets",
    "network.securityGroups": "security_groups",
    "network.allowedClientCidrs": "allowed_client_cidrs",
    "logs.group": "cloudwatch_logs_group",
    "logs.retentionDays": "cloudwatch_logs_default_retention",
    "logs.streamPrefix": "cloudwatch_logs_stream_prefix",
    "secrets": "secrets",
    "tags": "tags",
    "tls.validityDays": "tls_validity_days",
    "workerGroups": "worker_groups",
    "workers.architecture": "cpu_architecture",
    "scheduler.architecture": "cpu_architecture",
}
REWORDED = {
    "workerGroups": "worker_groups",
    "scheduler: ": "scheduler_cpu/scheduler_mem: ",
    "workers: ": "worker_cpu/worker_mem: ",
    "workers.spot uses FARGATE_SPOT and needs launchType FARGATE": "fargate_spot=True needs "
    "Fargate (FargateCluster, or ECSCluster with fargate_scheduler and fargate_workers)",
    "autoscaling.": "adapt: ",
}


@dataclass(frozen=True)
class Options:
    kind: str
    name: str | None
    spec: DaskAwsClusterSpec
    n_workers: int
    region: str | None
    session_kwargs: dict[str, str]
    # How this client reaches the scheduler (cluster/reach.py): fargate_use_private_ip
    # True "private", False "public", unset "auto" (by where this machine is, at start).
    reach: Literal["auto", "private", "public"]
    cidrs_given: bool  # allowed_client_cidrs given: those, else the path's own default
    startup_timeout: float


def _value(kwargs: Mapping[str, Any], key: str) -> Any:
    value = kwargs.get(key)
    return config.get(key) if value is None else value


def _seconds(value: Any) -> int | None:
    from dask.utils import parse_timedelta

    if value in (None, "", 0, False):
        return None
    seconds = parse_timedelta(value, default="seconds")
    return max(1, int(seconds)) if seconds else None


def _check_names(kind: str, kwargs: Mapping[str, Any]) -> None:
    for key in kwargs:
        if key in UNSUPPORTED:
            raise ValueError(f"{kind}: {key} is not supported by dask-aws: {UNSUPPORTED[key]}")
        if key not in CONFIGURABLE and key not in OTHER:
            raise TypeError(f"{kind}() got an unexpected keyword argument {key!r}")


def _launch_type(kind: str, kwargs: Mapping[str, Any], cluster_arn: str | None) -> LaunchType:
    if kind == FARGATE_KIND:
        return LaunchType.FARGATE
    fargate = (bool(kwargs.get("fargate_scheduler")), bool(kwargs.get("fargate_workers")))
    if fargate == (True, True):
        return LaunchType.FARGATE
    if any(fargate):
        raise ValueError(
            f"{kind}: fargate_scheduler and fargate_workers must be equal: dask-aws runs the "
            "scheduler and the workers with one launch type"
        )
    if not cluster_arn:
        raise ValueError(
            f"{kind} runs on an existing EC2-backed ECS cluster: pass "
            "cluster_arn='arn:aws:ecs:<region>:<account>:cluster/<name>' (dask-aws does not "
            "create EC2 capacity), or use FargateCluster"
        )
    return LaunchType.EC2


def _reach(use_private_ip: Any, launch: LaunchType) -> Literal["auto", "private", "public"]:
    if use_private_ip not in (None, True, False):
        raise ValueError(
            f"fargate_use_private_ip={use_private_ip!r}: pass True (connect to the scheduler's "
            "private IP, from inside its VPC), False (give it a public IP that only your "
            "public address, or allowed_client_cidrs, may reach) or None (the default: "
            "private inside the VPC, public outside)"
        )
    if launch is LaunchType.EC2:
        if use_private_ip is False:
            raise ValueError(
                "fargate_use_private_ip=False: tasks of the EC2 launch type get no public IP; "
                "connect from inside the cluster's VPC"
            )
        return "private"
    return "auto" if use_private_ip is None else "private" if use_private_ip else "public"


def _image(kwargs: Mapping[str, Any], gpu: int) -> str:
    image = _value(kwargs, "image")
    if image:
        return str(image)
    if gpu:
        return str(config.get("gpu-image") or DEFAULT_GPU_IMAGE)
    return DEFAULT_IMAGE


def _message(error: ValidationError) -> str:
    messages: list[str] = []
    for item in error.errors():
        text = str(item["msg"]).removeprefix("Value error, ")
        path = ".".join(str(part) for part in item["loc"] if not isinstance(part, int))
        match = next((p for p in ARGUMENT_OF if path == p or path.startswith(p + ".")), None)
        if match:
            rest = path[len(match) :].strip(".").replace(".[key]", "")
            where = f" ({rest})" if rest else ""
            messages.append(f"{ARGUMENT_OF[match]}{where}: {text}")
            continue
        for old, new in REWORDED.items():
            text = text.replace(old, new)
        messages.append(text if not path else f"{path}: {text}")
    return "; ".join(dict.fromkeys(messages))


def _groups(groups: Any) -> list[Any] | None:
    """worker_groups: WorkerGroupSpec objects or dicts in its form (snake_case or camelCase)."""
    if groups is None:
        return None
    if isinstance(groups, Mapping | str):
        raise ValueError(
            "worker_groups: a list of groups, e.g. [{'name': 'spot', 'capacity': "
            "'Spot', 'replicas': 4}]"
        )
    return [g.wire() if isinstance(g, WorkerGroupSpec) else dict(g) for g in groups]


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _drop_none(v) if isinstance(v, dict) and k not in ("env", "tags", "secrets") else v
        for k, v in value.items()
        if v is not None
    }


def build(kind: str, kwargs: Mapping[str, Any]) -> Options:
    """Validate everything a person passed; raises ValueError/TypeError, calls nothing."""
    _check_names(kind, kwargs)
    cluster_arn = _value(kwargs, "cluster_arn") or None
    gpu = int(_value(kwargs, "worker_gpu") or 0)
    if gpu and kind == FARGATE_KIND:
        raise ValueError(
            f"worker_gpu={gpu} needs GPU instances, and Fargate has none: use "
            f"ECSCluster(cluster_arn='arn:aws:ecs:<region>:<account>:cluster/<gpu-cluster>', "
            f"worker_gpu={gpu}) on an ECS cluster with GPU container instances"
        )
    launch = _launch_type(kind, kwargs, cluster_arn)
    if gpu and launch is LaunchType.FARGATE:
        raise ValueError(f"worker_gpu={gpu} needs the EC2 launch type: Fargate has no GPUs")
    architecture = kwargs.get("cpu_architecture")
    if isinstance(architecture, str):
        architecture = architecture.upper()  # dask-cloudprovider's users write "arm64" too
    name = kwargs.get("name")
    if name is not None:
        error = owner_name_error(str(name))
        if error:
            raise ValueError(f"name: {error}")
    reach = _reach(_value(kwargs, "fargate_use_private_ip"), launch)
    cidrs = _value(kwargs, "allowed_client_cidrs")
    security = _value(kwargs, "security")
    if not isinstance(security, bool):
        raise ValueError(
            f"security={security!r}: pass True (the default: a certificate authority of the "
            "cluster's own, mutual TLS; the client credentials are in cluster.security) or "
            "False (plain tcp://, anyone who reaches the scheduler can run code on it); "
            "dask-aws issues the certificates itself"
        )
    environment = dict(_value(kwargs, "environment") or {})
    vpc = _value(kwargs, "vpc")
    n_workers = int(_value(kwargs, "n_workers") or 0)
    raw: dict[str, Any] = {
        "image": _image(kwargs, gpu),
        "launchType": launch.value,
        "clusterArn": cluster_arn,
        "platformVersion": _value(kwargs, "platform_version") or None,
        "region": _value(kwargs, "region_name") or None,
        "network": {
            "vpc": None if vpc in (None, "", "default") else vpc,
            "subnets": list(_value(kwargs, "subnets") or []),
            "securityGroups": list(_value(kwargs, "security_groups") or []),
            # Public path: public IPs. Otherwise unset: a public IP exactly where the
            # subnet needs one to pull the image (the security group still keeps clients out).
            "assignPublicIp": True if reach == "public" else None,
            "allowedClientCidrs": list(cidrs or []),
        },
        "iam": {
            "executionRoleArn": _value(kwargs, "execution_role_arn") or None,
            "taskRoleArn": _value(kwargs, "task_role_arn") or None,
            "taskRolePolicies": list(_value(kwargs, "task_role_policies") or []),
        },
        "scheduler": {
            "cpu": _value(kwargs, "scheduler_cpu"),
            "memory": _value(kwargs, "scheduler_mem"),
            "extraArgs": [str(a) for a in _value(kwargs, "scheduler_extra_args") or []],
            "env": environment,
            "idleTimeoutSeconds": _seconds(_value(kwargs, "scheduler_timeout")),
            "idleAction": "Delete",
            "architecture": architecture,
        },
        "workers": {
            "replicas": n_workers,
            "cpu": _value(kwargs, "worker_cpu"),
            "memory": _value(kwargs, "worker_mem"),
            "nthreads": _value(kwargs, "worker_nthreads"),
            "memoryLimit": kwargs.get("worker_mem_limit"),
            "gpu": gpu,
            "extraArgs": [str(a) for a in _value(kwargs, "worker_extra_args") or []],
            "env": environment,
            "spot": bool(_value(kwargs, "fargate_spot")),
            "architecture": architecture,
        },
        "workerGroups": _groups(kwargs.get("worker_groups")),
        "logs": {
            "group": _value(kwargs, "cloudwatch_logs_group") or None,
            "retentionDays": _value(kwargs, "cloudwatch_logs_default_retention"),
            "streamPrefix": _value(kwargs, "cloudwatch_logs_stream_prefix") or "dask",
        },
        "secrets": dict(kwargs.get("secrets") or {}),
        "tls": {"enabled": security, "validityDays": _value(kwargs, "tls_validity_days")},
        "tags": {str(k): str(v) for k, v in (_value(kwargs, "tags") or {}).items()},
    }
    try:
        spec = DaskAwsClusterSpec.model_validate(_drop_none(raw))
    except ValidationError as exc:
        raise ValueError(f"{kind}: {_message(exc)}") from None
    session_kwargs = {
        key: str(kwargs[key])
        for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        if kwargs.get(key)
    }
    return Options(
        kind=kind,
        name=str(name) if name is not None else None,
        spec=spec,
        n_workers=n_workers,
        region=spec.region,
        session_kwargs=session_kwargs,
        reach=reach,
        cidrs_given=bool(cidrs),
        startup_timeout=float(_seconds(_value(kwargs, "startup_timeout")) or 600),
    )
