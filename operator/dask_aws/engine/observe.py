"""Observe: read everything one owner has on AWS. Changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from dask_aws.aws import iam_roles, log_group, network
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.task_definitions import Component, Refs
from dask_aws.engine.memory import Seen
from dask_aws.engine.resources import Place, rows, task_definition_key


@dataclass
class Observed:
    network: network.Network
    refs: Refs
    found: dict[str, Found | None]  # by resources.rows() key; None: missing
    tasks: list[ecs_tasks.Task] = field(default_factory=list)
    # Whether the infrastructure was read from AWS in this step (False: recalled, memory.py).
    full: bool = True

    @property
    def place(self) -> Place:
        return Place(self.network, self.refs)

    @property
    def cluster(self) -> Found | None:
        return self.found.get("cluster")

    def task_definition(self, component: Component, group: str = "") -> Found | None:
        return self.found.get(task_definition_key(component, group))


def refs(aws: Aws, target: Target) -> Refs:
    return Refs(
        execution_role_arn=iam_roles.role_arn(aws, target, "execution"),
        task_role_arn=iam_roles.role_arn(aws, target, "task"),
        log_group=log_group.name(target),
        region=aws.region,
    )


def observe(aws: Aws, target: Target, seen: Seen | None = None) -> Observed:
    """Everything the owner has; with `seen` (a quiet step), only its tasks are read."""
    if seen is not None:
        return _recalled(aws, target, seen)
    place = Place(network.observe(aws, target), refs(aws, target))
    found: dict[str, Found | None] = {}
    for resource in rows(target):
        if resource.wanted(target):
            found[resource.key] = resource.observe(aws, target, place)
            place = resource.place_after(place, found[resource.key])
    cluster = found["cluster"]
    return Observed(
        network=place.require_network(),
        refs=place.refs,
        found=found,
        tasks=ecs_tasks.observe(aws, target, cluster.id) if cluster else [],
    )


def _recalled(aws: Aws, target: Target, seen: Seen) -> Observed:
    place = Place(seen.network or network.observe(aws, target), refs(aws, target))
    found: dict[str, Found | None] = {}
    for resource in rows(target):
        if resource.wanted(target):
            if seen.new and resource.given(target):
                found[resource.key] = resource.observe(aws, target, place)
            else:
                found[resource.key] = seen.found.get(resource.key)
            place = resource.place_after(place, found[resource.key])
    cluster = found["cluster"]
    tasks = (
        ecs_tasks.observe_known(aws, target, cluster.id, seen.live, listed=not seen.sole)
        if cluster and not seen.new
        else []
    )
    described = {t.arn for t in tasks}
    history = [t for t in seen.stopped if t.arn not in described]
    return Observed(
        network=place.require_network(),
        refs=place.refs,
        found=found,
        tasks=sorted(tasks + history, key=lambda t: (not t.live, t.arn)),
        full=False,
    )
