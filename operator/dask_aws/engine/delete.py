"""Deletion in dependency order: tasks (until stopped), security group, roles, task
definitions, log group, then the ECS cluster if it is ours. NotFound counts as done, so
the step can be repeated after any crash. deletionPolicy Retain only marks resources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import ClientError, WaiterError

from dask_aws.aws import ecs_cluster, iam_roles, log_group, network, security_group
from dask_aws.aws import task_definitions as tds
from dask_aws.aws import tasks as ecs_tasks
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.tags import RETAINED
from dask_aws.engine.events import Event
from dask_aws.errors import DaskAwsError, PermanentError, TransientError, translate
from dask_aws.spec import DeletionPolicy

T = TypeVar("T")


def _role(aws: Aws, target: Target, kind: iam_roles.Kind) -> Found | None:
    try:
        return iam_roles.observe(aws, target, kind)
    except PermanentError:
        return None


@dataclass
class DeleteResult:
    done: bool
    events: list[Event] = field(default_factory=list)
    error: DaskAwsError | None = None


def _unless_foreign(read: Callable[[], T]) -> T | None:
    """Observe, treating 'not ours' or 'the user's reference is gone' as nothing to delete."""
    try:
        return read()
    except PermanentError:
        return None


def delete(aws: Aws, target: Target) -> DeleteResult:
    try:
        if target.spec.deletion_policy is DeletionPolicy.RETAIN:
            _mark_retained(aws, target)
            return DeleteResult(
                True, [Event("Normal", "Retained", "AWS resources kept (deletionPolicy Retain)")]
            )
        _delete_all(aws, target)
    except ClientError as exc:
        return DeleteResult(False, [], translate(exc))
    except DaskAwsError as exc:
        return DeleteResult(False, [Event("Warning", exc.reason, exc.message)], exc)
    return DeleteResult(True, [Event("Normal", "Deleted", "all AWS resources removed")])


def _delete_all(aws: Aws, target: Target) -> None:
    cluster = _unless_foreign(lambda: ecs_cluster.observe(aws, target))
    if cluster is not None:
        live = [t.arn for t in ecs_tasks.observe(aws, target, cluster.id) if t.live]
        ecs_tasks.stop(aws, cluster.id, live, "dask-aws: cluster deleted")
        try:
            ecs_tasks.wait_stopped(aws, cluster.id, live)
        except WaiterError as exc:
            raise TransientError("TasksStopping", f"tasks still stopping: {exc}") from exc
    net = _unless_foreign(lambda: network.observe(aws, target))
    if net is not None:
        for group in _unless_foreign(lambda: security_group.observe(aws, target, net)) or []:
            security_group.delete(aws, group)
    for kind in iam_roles.KINDS:
        role = _role(aws, target, kind)
        if role is not None:
            iam_roles.delete(aws, role)
    for role_name in tds.ROLES:
        tds.delete(aws, target, role_name)
    logs = _unless_foreign(lambda: log_group.observe(aws, target))
    if logs is not None:
        log_group.delete(aws, logs)
    if cluster is not None:
        ecs_cluster.delete(aws, cluster)


def _mark_retained(aws: Aws, target: Target) -> None:
    mark = {RETAINED: "true"}
    cluster = _unless_foreign(lambda: ecs_cluster.observe(aws, target))
    if cluster is not None and cluster.ours:
        aws.ecs.tag_resource(resourceArn=cluster.id, tags=[{"key": RETAINED, "value": "true"}])
    for kind in iam_roles.KINDS:
        role = _role(aws, target, kind)
        if role is not None and role.ours:
            aws.iam.tag_role(
                RoleName=role.id.rsplit("/", 1)[1], Tags=[{"Key": RETAINED, "Value": "true"}]
            )
    net = _unless_foreign(lambda: network.observe(aws, target))
    if net is not None:
        for group in _unless_foreign(lambda: security_group.observe(aws, target, net)) or []:
            if group.ours:
                aws.ec2.create_tags(Resources=[group.id], Tags=[{"Key": RETAINED, "Value": "true"}])
    logs = _unless_foreign(lambda: log_group.observe(aws, target))
    if logs is not None and logs.ours:
        aws.logs.tag_log_group(logGroupName=logs.id, tags=mark)
