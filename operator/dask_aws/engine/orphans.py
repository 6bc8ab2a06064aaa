"""What dask-aws created, remembered wherever it is, and removed once nothing uses it.

Observe only looks where the current spec points. A spec change can move the cluster
(region, clusterArn) or swap a created resource for one the user brings (logs.group,
network.securityGroups, iam.*RoleArn); the created one would then be found by nobody.
So every step records what it created in `status.aws.created`, and what was recorded
before but is no longer in use is removed here, in its own region. Deletion removes the
same records, so it needs no readable spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.engine.resources import lookup, order
from dask_aws.errors import DaskAwsError, TransientError, from_botocore
from dask_aws.status import CreatedResource

T = TypeVar("T")

# Not a resource but the tasks we started in an ECS cluster, ours or the user's: removing
# the record stops them.
TASKS = "tasks"


def record(aws: Aws, found: Mapping[str, Found | None]) -> list[CreatedResource]:
    """The created resources among those a step found or ensured, and where its tasks run."""
    cluster = found.get("cluster")
    tasks = [CreatedResource(kind=TASKS, id=cluster.id, region=aws.region)] if cluster else []
    return tasks + [
        CreatedResource(kind=key, id=f.id, region=aws.region if row.regional else "")
        for key, f in sorted(found.items(), key=lambda item: order(item[0]))
        if f is not None and f.ours and (row := lookup(key)) is not None
    ]


def _identity(entry: CreatedResource) -> tuple[str, str, str]:
    resource = lookup(entry.kind)
    return entry.kind, entry.region, resource.stable_id(entry.id) if resource else entry.id


def merge(*groups: Iterable[CreatedResource]) -> list[CreatedResource]:
    """One entry per resource; a later group's (fresher) id wins."""
    merged: dict[tuple[str, str, str], CreatedResource] = {}
    for group in groups:
        for entry in group:
            merged[_identity(entry)] = entry
    return list(merged.values())


def unused(
    previous: Iterable[CreatedResource], current: Iterable[CreatedResource]
) -> list[CreatedResource]:
    in_use = {_identity(e) for e in current}
    return [
        e
        for e in previous
        if _identity(e) not in in_use and (e.kind == TASKS or lookup(e.kind) is not None)
    ]


@dataclass(frozen=True)
class KnownTasks:
    """Every live task of the owner in one ECS cluster, when the caller knows them all (the
    library: only its process starts them, and no step runs while it deletes)."""

    cluster_arn: str
    workers: tuple[str, ...]
    scheduler: str | None
    # Some worker may not have registered with the scheduler yet: stop the scheduler only
    # once the workers have stopped. distributed's nanny, told to close while its worker
    # starts, first waits for the worker to register, which it cannot once its scheduler is
    # gone, and the task then waits out its stop timeout (60 s).
    workers_first: bool = False

    @classmethod
    def of(cls, cluster_arn: str, live: Sequence[str], scheduler: str | None) -> KnownTasks:
        workers = tuple(arn for arn in live if arn != scheduler)
        return cls(cluster_arn, workers, scheduler if scheduler in live else None)


@dataclass
class Removal:
    left: list[CreatedResource] = field(default_factory=list)  # try again later
    removed: list[CreatedResource] = field(default_factory=list)
    errors: list[DaskAwsError] = field(default_factory=list)


def _stop_tasks(
    aws: Aws, target: Target, cluster_arn: str, wait: bool, known: KnownTasks | None = None
) -> bool:
    """Stops the owner's tasks in that cluster; True once none is left running. `known`:
    they are known, so none is listed or described before it is stopped."""
    # Workers before their scheduler: a worker told to stop while its scheduler still runs
    # says goodbye and exits at once; one whose scheduler went first spends its stop
    # timeout trying to reach it.
    if known is not None and known.cluster_arn == cluster_arn:
        schedulers = list(filter(None, [known.scheduler]))
        if wait and known.workers_first:
            phases = [list(known.workers), schedulers]
        else:
            phases = [[*known.workers, *schedulers]]
    else:
        try:
            found = ecs_tasks.observe(aws, target, cluster_arn)
        except aws.ecs.exceptions.ClusterNotFoundException:
            return True
        by_role = sorted(found, key=lambda t: t.component == "scheduler")
        phases = [[t.arn for t in by_role if t.live]]
    for live in filter(None, phases):
        try:
            ecs_tasks.stop(aws, cluster_arn, live, "dask-aws: no longer used by the spec")
        except aws.ecs.exceptions.ClusterNotFoundException:
            return True
        if not wait:
            return False
        try:
            ecs_tasks.wait_stopped(aws, cluster_arn, live)
        except WaiterError as exc:
            raise TransientError("TasksStopping", f"tasks still stopping: {exc}") from exc
    return True


def _attempt(
    aws: Aws, entry: CreatedResource, call: Callable[..., T], *args: Any
) -> T | DaskAwsError:
    """The call's result, or the failure that leaves `entry` for a later try."""
    try:
        return call(*args)
    except (ClientError, BotoCoreError) as exc:
        return from_botocore(exc, aws.identity, entry.region or aws.region)
    except DaskAwsError as exc:
        return exc


def remove(
    aws: Aws,
    target: Target,
    entries: Sequence[CreatedResource],
    *,
    wait: bool = False,
    tasks: KnownTasks | None = None,
) -> Removal:
    """Tasks first, then the resources, dependents before what they depend on. Anything
    that cannot go yet (tasks still stopping, a group still in use) is left for later.
    `tasks`: the owner's live tasks when the caller knows them all."""
    out = Removal()
    busy: set[str] = set()  # clusters where our tasks still run
    for entry in entries:
        if entry.kind != TASKS:
            continue
        regional = aws.in_region(entry.region)
        stopped = _attempt(aws, entry, _stop_tasks, regional, target, entry.id, wait, tasks)
        if stopped is True:
            out.removed.append(entry)
            continue
        if isinstance(stopped, DaskAwsError):
            out.errors.append(stopped)
        busy.add(entry.id)
        out.left.append(entry)
    for entry in sorted(entries, key=lambda e: -order(e.kind)):
        if entry.kind == TASKS:
            continue
        if entry.kind == "cluster" and entry.id in busy:
            out.left.append(entry)
            continue
        resource, found = lookup(entry.kind), Found(entry.id, ours=True)
        assert resource is not None  # unused() and merge() keep only known kinds
        failure = _attempt(aws, entry, resource.delete, aws.in_region(entry.region), found)
        if isinstance(failure, DaskAwsError):
            out.left.append(entry)
            out.errors.append(failure)
        else:
            out.removed.append(entry)
    return out


def where(entries: Iterable[CreatedResource]) -> str:
    regions = sorted({e.region for e in entries if e.region})
    return f" in {', '.join(regions)}" if regions else ""
