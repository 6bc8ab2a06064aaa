"""runtimePlatform and ephemeralStorage, checked as AWS checks them (moto checks neither).

What AWS does, and where we read it:
- ephemeralStorage.sizeInGiB: 21..200 (API_EphemeralStorage: "The minimum supported value is
  21 GiB and the maximum supported value is 200 GiB"). RegisterTaskDefinition refuses other
  sizes with "EphemeralStorage size should be at least 21" / "... at most 200" (wording as
  quoted by projects that met it, e.g. guardian/cdk#1101; the code, ClientException, is what
  ECS answers for a bad task definition). RunTask's overrides.ephemeralStorage has the same
  bounds (API_TaskOverride); AWS's wording there we did not find: code only
  (InvalidParameterException, RunTask's code for bad input).
- ephemeralStorage takes effect on Fargate only, but AWS does not refuse it elsewhere: an
  EC2/EXTERNAL task definition with it registers and the agent ignores it
  (aws/amazon-ecs-agent#4520, answered by the ECS team: "only supported on Fargate"). So the
  local AWS accepts it too.
- runtimePlatform.cpuArchitecture is X86_64 | ARM64 and operatingSystemFamily one of AWS's
  OSFamily enum (botocore's ECS service model, the API's own definition). A value outside the
  enum is a request validation error; the message is ours, the code ClientException.
- ARM64 on Fargate runs Linux only (Batch's RuntimePlatform, which mirrors ECS: "This
  parameter must be set to X86_64 for Windows containers"): our wording, ClientException.
- Fargate Spot: Linux X86_64 (platform 1.3.0+) and, since 2024, Linux ARM64 (platform 1.4.0+)
  (API_CapacityProviderStrategyItem; aws/containers-roadmap#2407, shipped). Windows is not
  supported on Fargate Spot (developer guide, "AWS Fargate capacity providers"); RunTask of a
  Windows task definition on FARGATE_SPOT is refused: our wording, InvalidParameterException.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dask_aws.local.strict import EcsError, client_error

CPU_ARCHITECTURES = ("X86_64", "ARM64")
OS_FAMILIES = (
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
    "LINUX",
)
MIN_EPHEMERAL_GIB = 21
MAX_EPHEMERAL_GIB = 200


def _size_problem(storage: dict[str, Any] | None) -> str | None:
    if not storage:
        return None
    size = storage.get("sizeInGiB")
    if not isinstance(size, int) or size < MIN_EPHEMERAL_GIB:
        return f"EphemeralStorage size should be at least {MIN_EPHEMERAL_GIB}"
    if size > MAX_EPHEMERAL_GIB:
        return f"EphemeralStorage size should be at most {MAX_EPHEMERAL_GIB}"
    return None


def check_task_definition(
    platform: dict[str, Any] | None,
    storage: dict[str, Any] | None,
    compatibilities: Sequence[str] | None,
) -> None:
    problem = _size_problem(storage)
    if problem:
        raise client_error(problem)
    platform = platform or {}
    architecture = platform.get("cpuArchitecture")
    family = platform.get("operatingSystemFamily")
    if architecture is not None and architecture not in CPU_ARCHITECTURES:
        raise client_error(
            f"Invalid 'runtimePlatform.cpuArchitecture' value '{architecture}': must be one "
            f"of {', '.join(CPU_ARCHITECTURES)}."
        )
    if family is not None and family not in OS_FAMILIES:
        raise client_error(
            f"Invalid 'runtimePlatform.operatingSystemFamily' value '{family}': must be one "
            f"of {', '.join(OS_FAMILIES)}."
        )
    fargate = "FARGATE" in (compatibilities or [])
    if fargate and architecture == "ARM64" and family not in (None, "LINUX"):
        raise client_error(
            "Fargate supports runtimePlatform.cpuArchitecture ARM64 only with "
            "operatingSystemFamily LINUX."
        )


def check_run_task(task_def: Any, overrides: dict[str, Any], providers: set[str]) -> None:
    problem = _size_problem(overrides.get("ephemeralStorage"))
    if problem:
        raise EcsError("InvalidParameterException", problem + " (task overrides).")
    family = (getattr(task_def, "runtime_platform", None) or {}).get("operatingSystemFamily")
    if "FARGATE_SPOT" in providers and family and family != "LINUX":
        raise EcsError(
            "InvalidParameterException",
            "The FARGATE_SPOT capacity provider does not support Windows tasks.",
        )
