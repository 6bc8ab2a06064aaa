"""Observe: read everything one owner has on AWS. Changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from dask_aws.aws import ecs_cluster, iam_roles, log_group, network, security_group
from dask_aws.aws import task_definitions as tds
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.iam_roles import Kind
from dask_aws.aws.task_definitions import Refs, Role


@dataclass
class Observed:
    network: network.Network
    refs: Refs
    cluster: Found | None
    roles: dict[Kind, Found | None]
    security_groups: list[Found]
    log_group: Found | None
    task_definitions: dict[Role, Found | None]
    tasks: list[ecs_tasks.Task] = field(default_factory=list)


def refs(aws: Aws, target: Target) -> Refs:
    return Refs(
        execution_role_arn=iam_roles.role_arn(aws, target, "execution"),
        task_role_arn=iam_roles.role_arn(aws, target, "task"),
        log_group=log_group.name(target),
        region=aws.region,
    )


def observe(aws: Aws, target: Target) -> Observed:
    net = network.observe(aws, target)
    the_refs = refs(aws, target)
    cluster = ecs_cluster.observe(aws, target)
    return Observed(
        network=net,
        refs=the_refs,
        cluster=cluster,
        roles={kind: iam_roles.observe(aws, target, kind) for kind in iam_roles.KINDS},
        security_groups=security_group.observe(aws, target, net),
        log_group=log_group.observe(aws, target),
        task_definitions={r: tds.observe(aws, target, r, the_refs) for r in tds.ROLES},
        tasks=ecs_tasks.observe(aws, target, cluster.id) if cluster else [],
    )
