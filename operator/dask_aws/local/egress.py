"""What a Fargate task's subnet lets it reach, read from moto's EC2 backend, and the stop
reason AWS gives a task that cannot get out.

The decision is `dask_aws.aws.egress.decide`, the one the engine makes before RunTask; here
it judges a task that was started anyway (plain boto3 RunTask), which then stops as on AWS:
stopCode TaskFailedToStart with AWS's CannotPullContainerError or
ResourceInitializationError text. Call with the shared lock held.
"""

from __future__ import annotations

from typing import Any

from dask_aws.aws import egress


def _target(route: Any) -> str:
    """The id of a moto route's target (moto keeps objects where AWS shows ids)."""
    for value in (
        route.gateway_id,
        route.nat_gateway_id,
        route.transit_gateway_id,
        route.instance_id,
        getattr(route.interface, "id", None),
        getattr(route.vpc_pcx, "id", None),
        getattr(route.carrier_gateway, "id", None),
    ):
        if value:
            return str(value)
    return "unknown"


def subnet(ec2: Any, subnet_id: str) -> egress.Subnet:
    """The subnet's own route table, else its VPC's main one, as AWS routes it."""
    vpc_id = ec2.get_subnet(subnet_id).vpc_id
    tables = [t for t in ec2.route_tables.values() if t.vpc_id == vpc_id]
    own = [t for t in tables if any(a.get("SubnetId") == subnet_id for a in t.associations)]
    main = [t for t in tables if t.main_association_id is not None]
    table = next(iter(own or main), None)
    if table is None:
        return egress.Subnet(subnet_id, None, None)
    route = next((r for r in table.routes if r.destination_cidr_block == "0.0.0.0/0"), None)
    return egress.Subnet(subnet_id, table.id, None if route is None else _target(route))


def endpoints(ec2: Any, vpc_id: str) -> list[egress.Endpoint]:
    found = []
    for e in ec2.vpc_end_points.values():
        gateway = e.vpc_endpoint_type == "Gateway"
        if e.vpc_id == vpc_id and egress.usable(e.state, gateway, e.private_dns_enabled):
            found.append(
                egress.Endpoint(str(e.service_name), gateway, frozenset(e.route_table_ids or ()))
            )
    return found


def wants(task_def: Any, region: str) -> egress.Wants:
    definitions = list(task_def.container_definitions)
    services = set()
    for definition in definitions:
        for secret in definition.get("secrets") or []:
            value = str(secret.get("valueFrom", ""))
            services.add("secretsmanager" if ":secretsmanager:" in value else "ssm")
    return egress.Wants(
        region=region,
        images=tuple(str(d.get("image", "")) for d in definitions),
        secret_services=tuple(sorted(services)),
        logs=any(
            (d.get("logConfiguration") or {}).get("logDriver") == "awslogs" for d in definitions
        ),
    )


def _awsvpc(task: Any) -> dict[str, Any]:
    config = getattr(task, "network_configuration", None) or {}
    return dict(config.get("awsvpcConfiguration") or {})


def public_ip(task: Any) -> bool:
    return str(_awsvpc(task).get("assignPublicIp", "DISABLED")).upper() == "ENABLED"


def first_problem(task: Any, task_def: Any, ec2: Any, region: str) -> egress.Problem | None:
    """What the task's subnet keeps it from reaching first (secrets, image, logs), if any."""
    subnets = _awsvpc(task).get("subnets") or []
    if not subnets:
        return None
    # moto puts the task's ENI in the first subnet; so does this judgement.
    vpc_id = ec2.get_subnet(subnets[0]).vpc_id
    found = egress.problems(
        subnet(ec2, subnets[0]), endpoints(ec2, vpc_id), wants(task_def, region), public_ip(task)
    )
    return found[0] if found else None


# -- AWS's words --------------------------------------------------------------------------------
def image_ref(image: str) -> tuple[str, str, str]:
    """(registry, repository, tag or digest) as a container runtime resolves an image name:
    `python` is docker.io/library/python:latest."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    repository, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = path, "latest"
    return registry, repository, digest or tag


def _timeout(host: str) -> str:
    """An AWS SDK call that found no way out (AWS shows the address it dialled)."""
    return (
        f'RequestError: send request failed caused by: Post "https://{host}/": '
        f"dial tcp {host}:443: i/o timeout"
    )


def stop_reason(problem: egress.Problem, region: str) -> str:
    """AWS's stoppedReason for a task that could not reach what `problem` names."""
    init = "ResourceInitializationError: unable to pull secrets or registry auth: execution "
    if problem.need == "secrets":
        source = "asm" if problem.what == "secretsmanager" else "ssm"
        return (
            f"{init}resource retrieval failed: unable to retrieve secret from {source}: "
            f"service call has been retried 5 time(s): "
            f"{_timeout(f'{problem.what}.{region}.amazonaws.com')}. "
            "Please check your task network configuration."
        )
    if problem.need == "logs":
        return (
            "ResourceInitializationError: failed to validate logger args: create stream has "
            "been retried 1 times: failed to create Cloudwatch log stream: "
            f"{_timeout(f'logs.{region}.amazonaws.com')} : exit status 1"
        )
    registry, repository, reference = image_ref(problem.what)
    if egress.ECR_IMAGE.match(problem.what):
        ecr_region = registry.split(".")[3]
        return (
            f"{init}resource retrieval failed: unable to retrieve ecr registry auth: service "
            f"call has been retried 3 time(s): {_timeout(f'api.ecr.{ecr_region}.amazonaws.com')}"
            ". Please check your task network configuration."
        )
    host = "registry-1.docker.io" if registry == "docker.io" else registry
    separator = "@" if reference.startswith("sha256:") else ":"
    return (
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to "
        f"resolve ref {registry}/{repository}{separator}{reference}: failed to do request: "
        f'Head "https://{host}/v2/{repository}/manifests/{reference}": '
        f"dial tcp {host}:443: i/o timeout"
    )
