"""How a container definition becomes a local process: argv, environment, working directory.

The image is not pulled; the local Python environment stands in for it (the directory of
`sys.executable` comes first on PATH, so `dask` is the server's own). See the package
docstring for the `--host` / `--dashboard-address` rewriting of Dask commands.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Host variables a local process needs to run at all; nothing else leaks into containers.
PASSTHROUGH_ENV = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "LOGNAME")

SCHEDULER_COMMANDS: tuple[tuple[str, ...], ...] = (("dask", "scheduler"), ("dask-scheduler",))
WORKER_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("dask", "worker"),
    ("dask-worker",),
    ("dask", "cuda", "worker"),
)


@dataclass
class ContainerSpec:
    name: str
    essential: bool
    argv: list[str]
    env: dict[str, str]
    stop_timeout: float | None
    log_options: dict[str, str] | None = None
    definition: dict[str, Any] = field(default_factory=dict)


def _dask_part(argv: Sequence[str]) -> Sequence[str]:
    """The command a `sh -c SCRIPT NAME ARGS...` wrapper execs ("$@"), else argv itself."""
    if len(argv) > 4 and os.path.basename(argv[0]) in ("sh", "bash") and argv[1] == "-c":
        return argv[4:]
    return argv


def _command_kind(argv: Sequence[str]) -> str | None:
    argv = _dask_part(argv)
    if not argv:
        return None
    words = [os.path.basename(argv[0]), *argv[1:3]]
    for kind, patterns in (("scheduler", SCHEDULER_COMMANDS), ("worker", WORKER_COMMANDS)):
        if any(tuple(words[: len(p)]) == p for p in patterns):
            return kind
    return None


def _has_option(argv: Sequence[str], option: str) -> bool:
    return any(arg == option or arg.startswith(option + "=") for arg in argv)


def _without_cuda(argv: list[str]) -> list[str]:
    """`dask cuda worker ...` as `dask worker ...` when dask-cuda is not installed here: the
    local environment stands in for a RAPIDS image, and the GPU is the declared resource
    (`--resources GPU=n`, gpuIds, NVIDIA_VISIBLE_DEVICES), not a device."""
    start = len(argv) - len(_dask_part(argv))
    if argv[start : start + 3] != ["dask", "cuda", "worker"]:
        return argv
    if importlib.util.find_spec("dask_cuda") is not None:
        return argv
    return [*argv[:start], "dask", "worker", *argv[start + 3 :]]


def bind_dask_command(argv: Sequence[str], task_ip: str) -> list[str]:
    """Append `--host <ip>` (and the scheduler's dashboard address) to Dask commands."""
    result = _without_cuda(list(argv))
    kind = _command_kind(result)
    if kind is None:
        return result
    if not _has_option(_dask_part(result), "--host"):
        result += ["--host", task_ip]
    if kind == "scheduler" and not _has_option(_dask_part(result), "--dashboard-address"):
        result += ["--dashboard-address", f"{task_ip}:8787"]
    return result


def container_argv(definition: Mapping[str, Any], override: Mapping[str, Any] | None) -> list[str]:
    """entryPoint + command, with the run's command override (ECS semantics)."""
    entry_point = list(definition.get("entryPoint") or [])
    command = list(definition.get("command") or [])
    if override and override.get("command"):
        command = list(override["command"])
    return [*entry_point, *command]


def local_path() -> str:
    bindir = os.path.dirname(sys.executable)
    rest = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p and p != bindir]
    return os.pathsep.join([bindir, *rest])


def container_env(
    definition: Mapping[str, Any],
    override: Mapping[str, Any] | None,
    base: Mapping[str, str],
    resolve_secret: Callable[[str], str],
) -> dict[str, str]:
    """base < task definition environment < secrets < the run's environment override."""
    env = dict(base)
    for item in definition.get("environment") or []:
        env[str(item["name"])] = str(item.get("value", ""))
    for secret in definition.get("secrets") or []:
        env[str(secret["name"])] = resolve_secret(str(secret["valueFrom"]))
    if override:
        for item in override.get("environment") or []:
            env[str(item["name"])] = str(item.get("value", ""))
    return env


def base_env(
    task_ip: str,
    region: str,
    endpoint_url: str,
    launch_type: str,
    task_dir: str,
    host_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What every container starts from: a minimal host env plus ECS-like variables.

    No AWS credentials: a container has its task role's, from the agent's credentials
    endpoint (see local/agent.py), or none. HOME is the host's, so botocore's chain, which
    reads shared credentials and config files before the container provider, is pointed
    at files of the container's own (in the task's directory) instead of the host's ~/.aws.
    """
    source = os.environ if host_env is None else host_env
    env = {key: source[key] for key in PASSTHROUGH_ENV if key in source}
    env["PATH"] = local_path()
    env.update(
        {
            "HOSTNAME": "ip-" + task_ip.replace(".", "-") + ".ec2.internal",
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE" if launch_type == "FARGATE" else "AWS_ECS_EC2",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # Code in a task that calls AWS reaches the local AWS, never the real one.
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(task_dir, ".aws", "credentials"),
            "AWS_CONFIG_FILE": os.path.join(task_dir, ".aws", "config"),
            "BOTO_CONFIG": os.path.join(task_dir, ".boto"),
            # A task has no instance metadata service; without this, botocore's chain would
            # end by trying 169.254.169.254, which is not loopback.
            "AWS_EC2_METADATA_DISABLED": "true",
            "DASK_AWS_TASK_IP": task_ip,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def override_for(overrides: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    for item in (overrides or {}).get("containerOverrides") or []:
        if item.get("name") == name:
            return dict(item)
    return None


def stop_timeout_of(definition: Mapping[str, Any]) -> float | None:
    value = definition.get("stopTimeout")
    return None if value is None else float(value)


def awslogs_options(definition: Mapping[str, Any]) -> dict[str, str] | None:
    config = definition.get("logConfiguration") or {}
    if config.get("logDriver") != "awslogs":
        return None
    return {str(k): str(v) for k, v in (config.get("options") or {}).items()}


def task_role_arn(task_def: Any, overrides: Mapping[str, Any] | None) -> str | None:
    """The run's `overrides.taskRoleArn`, else the task definition's (ECS semantics)."""
    role = (overrides or {}).get("taskRoleArn") or getattr(task_def, "task_role_arn", None)
    return str(role) if role else None
