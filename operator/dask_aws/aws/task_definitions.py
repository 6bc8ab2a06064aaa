"""The scheduler and worker task definitions: one family for the scheduler, one for the
default worker group (spec.workers) and one per named worker group.

`desired()` is a pure function of the spec and the resolved role/log names, so the
plan knows whether a new revision is due without calling AWS. The revision carries a
hash of what it was registered from; a different hash means the spec changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from dask_aws.aws import drain, own_writes, tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.certs import CA, NODE_CERT, NODE_KEY
from dask_aws.errors import PermanentError
from dask_aws.spec import DEFAULT_GPU_IMAGE, Architecture, Capacity, DaskAwsClusterSpec

# The two components of a cluster, each one task definition family (not IAM roles).
Component = Literal["scheduler", "worker"]
COMPONENTS: tuple[Component, ...] = ("scheduler", "worker")
CONTAINER = {"scheduler": "dask-scheduler", "worker": "dask-worker"}
DASK_DEFAULT_DASHBOARD_PORT = 8787
SCHEDULER_ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
STOP_TIMEOUT = 60
# Fargate's most: a Spot worker's SIGTERM comes with the interruption, and it needs the
# time to hand its data to the others (drain.py) before the SIGKILL.
SPOT_STOP_TIMEOUT = 120
# With TLS, ECS puts these keys of the cluster's secret into each container's environment
# and distributed reads the PEM contents from there: stock images need no files baked in.
TLS_ENV = "DASK_DISTRIBUTED__COMM__TLS__"
# distributed's HTTP server (the dashboard) takes its certificate only as files, so the
# container first writes the PEM contents to a private temporary directory (mktemp -d:
# mode 0700). The script names no secret; "$@" is the Dask command.
HTTPS_WRAPPER = (
    'd="$(mktemp -d)" && printf "%s\\n" "$' + TLS_ENV + '{role}__CERT" > "$d/tls.crt" && '
    'printf "%s\\n" "$' + TLS_ENV + '{role}__KEY" > "$d/tls.key" && '
    'export DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT="$d/tls.crt" '
    'DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY="$d/tls.key" && exec "$@"'
)


def comm_address(spec: DaskAwsClusterSpec, ip: str | None) -> str:
    """Where Dask clients reach the scheduler at `ip`."""
    return f"{'tls' if spec.tls.enabled else 'tcp'}://{ip}:{spec.scheduler.port}"


def dashboard_url(spec: DaskAwsClusterSpec, ip: str | None) -> str:
    scheme = "https" if spec.tls.enabled else "http"
    return f"{scheme}://{ip}:{spec.scheduler.dashboard_port}/status"


@dataclass(frozen=True)
class Refs:
    """What a task definition points at; known before those resources exist."""

    execution_role_arn: str
    task_role_arn: str
    log_group: str
    region: str
    # The cluster's TLS secret and the version the tasks read; None: no TLS.
    tls_secret: str | None = None
    tls_version: str | None = None


def family(target: Target, component: Component, group: str = "") -> str:
    """The family of the scheduler, the default worker group ("") or a named group."""
    names = target.names
    if component == "scheduler":
        return names.scheduler_family
    return target.owner.short(255, tail=f"-worker-{group}") if group else names.worker_family


def _spot(target: Target, group: str) -> bool:
    return target.spec.worker_group(group).capacity_of is not Capacity.ON_DEMAND


def _command(target: Target, component: Component, refs: Refs, group: str = "") -> list[str]:
    dask = _dask_command(target, component, group)
    if not refs.tls_secret:
        return dask
    return ["sh", "-c", HTTPS_WRAPPER.format(role=_tls_role(component)), "sh", *dask]


def _tls_role(component: Component) -> str:
    return "SCHEDULER" if component == "scheduler" else "WORKER"


def _dask_command(target: Target, component: Component, group: str = "") -> list[str]:
    spec = target.spec
    if component == "scheduler":
        s = spec.scheduler
        command = ["dask", "scheduler", "--port", str(s.port)]
        if spec.tls.enabled:
            command += ["--protocol", "tls"]
        if s.dashboard_port != DASK_DEFAULT_DASHBOARD_PORT:
            command += ["--dashboard-address", f":{s.dashboard_port}"]
        return command + list(s.extra_args)
    w = spec.worker_group(group)
    command = ["dask", "cuda", "worker"] if w.gpu else ["dask", "worker"]
    nthreads = w.nthreads or max(1, w.cpu // 1024)
    command += [
        "--nthreads",
        str(nthreads),
        "--memory-limit",
        w.memory_limit or f"{w.memory}MiB",
        "--death-timeout",
        "120",
    ]
    resources = w.dask_resources()
    if resources:
        command += ["--resources", ",".join(f"{k}={v:g}" for k, v in sorted(resources.items()))]
    if _spot(target, group):
        command += ["--preload-nanny", drain.script(SPOT_STOP_TIMEOUT)]
    return command + list(w.extra_args)


def _environment(
    target: Target, component: Component, refs: Refs, group: str = ""
) -> dict[str, str]:
    spec = target.spec
    env = dict(spec.scheduler.env if component == "scheduler" else spec.worker_group(group).env)
    if refs.tls_secret:
        # Refuse plain connections even from a client configured without TLS.
        env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
    return env


def _secrets(target: Target, component: Component, refs: Refs) -> dict[str, str]:
    secrets = dict(target.spec.secrets)
    if refs.tls_secret:
        # `<arn>:<json key>::<version>`: one key of the version this definition was made
        # for, so new certificates mean a new revision and new tasks, never a mix.
        def key(name: str) -> str:
            return f"{refs.tls_secret}:{name}::{refs.tls_version or ''}"

        role = _tls_role(component)
        secrets[f"{TLS_ENV}CA_FILE"] = key(CA)
        secrets[f"{TLS_ENV}{role}__CERT"] = key(NODE_CERT)
        secrets[f"{TLS_ENV}{role}__KEY"] = key(NODE_KEY)
    return secrets


def image(spec: DaskAwsClusterSpec, component: Component, group: str = "") -> str:
    """The scheduler's and default group's image is spec.image unless workers.image says
    otherwise; a named GPU group defaults to a RAPIDS image, which has dask-cuda."""
    if component == "scheduler":
        return spec.image
    shape = spec.worker_group(group)
    if shape.image:
        return shape.image
    return DEFAULT_GPU_IMAGE if group and shape.gpu else spec.image


def desired(target: Target, component: Component, refs: Refs, group: str = "") -> dict[str, Any]:
    spec = target.spec
    size = spec.scheduler if component == "scheduler" else spec.worker_group(group)
    ports = (
        sorted({spec.scheduler.port, spec.scheduler.dashboard_port})
        if component == "scheduler"
        else []
    )
    container: dict[str, Any] = {
        "name": CONTAINER[component],
        "image": image(spec, component, group),
        "essential": True,
        "command": _command(target, component, refs, group),
        "environment": [
            {"name": k, "value": v}
            for k, v in sorted(_environment(target, component, refs, group).items())
        ],
        "secrets": [
            {"name": k, "valueFrom": v}
            for k, v in sorted(_secrets(target, component, refs).items())
        ],
        "portMappings": [{"containerPort": p, "protocol": "tcp"} for p in ports],
        # Container-level memory too: correct on AWS and avoids a moto crash on RunTask.
        "memoryReservation": size.memory,
        "stopTimeout": SPOT_STOP_TIMEOUT
        if component == "worker" and _spot(target, group)
        else STOP_TIMEOUT,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": refs.log_group,
                "awslogs-region": refs.region,
                "awslogs-stream-prefix": spec.logs.stream_prefix,
            },
        },
    }
    registration: dict[str, Any] = {
        "family": family(target, component, group),
        "taskRoleArn": refs.task_role_arn,
        "executionRoleArn": refs.execution_role_arn,
        "networkMode": "awsvpc",
        "requiresCompatibilities": [spec.launch_type.value],
        "cpu": str(size.cpu),
        "memory": str(size.memory),
        "containerDefinitions": [container],
    }
    # Only when asked for: an unchanged spec keeps its revision across upgrades.
    if size.architecture is Architecture.ARM64:
        registration["runtimePlatform"] = {
            "cpuArchitecture": size.architecture.value,
            "operatingSystemFamily": "LINUX",
        }
    if component == "worker":
        shape = spec.worker_group(group)
        if shape.gpu:
            container["resourceRequirements"] = [{"type": "GPU", "value": str(shape.gpu)}]
        if shape.ephemeral_storage_gib is not None:
            registration["ephemeralStorage"] = {"sizeInGiB": shape.ephemeral_storage_gib}
    return registration


def fingerprint(target: Target, registration: dict[str, Any]) -> str:
    """What a running task was started from. The network its RunTask names is part of it:
    the plan rolls tasks onto a new revision, so a change of subnets or security groups
    also moves the tasks (and frees a security group the spec no longer uses)."""
    network = target.spec.network
    started_from = {
        **registration,
        "network": [
            network.vpc,
            network.subnets,
            network.security_groups,
            network.assign_public_ip,
        ],
    }
    return hashlib.sha256(json.dumps(started_from, sort_keys=True).encode()).hexdigest()[:32]


def observe(
    aws: Aws, target: Target, component: Component, refs: Refs, group: str = ""
) -> Found | None:
    name = family(target, component, group)
    try:
        reply = aws.ecs.describe_task_definition(taskDefinition=name, include=["TAGS"])
    except aws.ecs.exceptions.ClientException:
        return None  # no ACTIVE revision of this family
    definition = reply["taskDefinition"]
    if definition.get("status") != "ACTIVE":
        return None
    have = tags.from_list(reply.get("tags"))
    if not tags.is_owned_by(have, target.owner):
        raise PermanentError("NameConflict", f"task definition family {name} is not ours")
    wanted = desired(target, component, refs, group)
    in_sync = have.get(tags.SPEC_HASH) == fingerprint(target, wanted)
    return Found(id=definition["taskDefinitionArn"], ours=True, in_sync=in_sync)


def _revisions(
    aws: Aws, family_name: str, status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
) -> list[str]:
    pages = aws.ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family_name, status=status
    )
    arns = [arn for page in pages for arn in page["taskDefinitionArns"]]
    return [a for a in arns if a.rsplit("/", 1)[1].rsplit(":", 1)[0] == family_name]


def ensure(aws: Aws, target: Target, component: Component, refs: Refs, group: str = "") -> Found:
    registration = desired(target, component, refs, group)
    owned = {
        **tags.ownership(target.owner, target.spec.tags),
        tags.SPEC_HASH: fingerprint(target, registration),
        **({tags.WORKER_GROUP: group} if group else {}),
    }
    return register(aws, registration, owned)


def register(aws: Aws, registration: dict[str, Any], owned: Mapping[str, str]) -> Found:
    """A new revision of the registration's family, tagged `owned`; older ones deregistered."""
    ecs_tags: Any = tags.as_ecs(owned)
    reply = aws.ecs.register_task_definition(**registration, tags=ecs_tags)
    arn = reply["taskDefinition"]["taskDefinitionArn"]
    own_writes.revision_registered(arn, first=reply["taskDefinition"]["revision"] == 1)
    if reply["taskDefinition"]["revision"] == 1:
        return Found(id=arn, ours=True)  # a new family: no older revision to deregister
    # Older revisions are superseded; running tasks keep working on an INACTIVE revision.
    for old in _revisions(aws, registration["family"]):
        if old != arn:
            aws.ecs.deregister_task_definition(taskDefinition=old)
    return Found(id=arn, ours=True)


def tag(aws: Aws, found: Found, values: Mapping[str, str]) -> None:
    aws.ecs.tag_resource(resourceArn=found.id, tags=tags.as_ecs(values))  # type: ignore[arg-type]


def delete(aws: Aws, found: Found) -> None:
    """Deregisters every ACTIVE revision of the found one's family and deletes them all,
    the ones superseded by spec changes (INACTIVE) too: AWS keeps those forever otherwise."""
    if not found.ours:
        return
    family_name = found.id.rsplit("/", 1)[1].rsplit(":", 1)[0]
    known = own_writes.family_known(found.id)
    if known is not None:
        # Registered here, every revision: the latest is the ACTIVE one (ensure
        # deregistered the others), so nothing needs listing.
        with contextlib.suppress(aws.ecs.exceptions.ClientException):
            aws.ecs.deregister_task_definition(taskDefinition=known[-1])
        arns = known
    else:
        active = _revisions(aws, family_name)
        for arn in active:
            aws.ecs.deregister_task_definition(taskDefinition=arn)
        arns = active + _revisions(aws, family_name, "INACTIVE")
    own_writes.family_gone(found.id)
    for start in range(0, len(arns), 10):
        try:
            aws.ecs.delete_task_definitions(taskDefinitions=arns[start : start + 10])
        except ClientError:
            # Deregistered is enough to stop new tasks; some endpoints (moto) lack deletion.
            break
