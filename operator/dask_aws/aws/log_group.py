"""The CloudWatch Logs group the containers write to (awslogs driver)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.errors import PermanentError


def name(target: Target) -> str:
    return target.spec.logs.group or target.names.log_group


def observe(aws: Aws, target: Target) -> Found | None:
    group_name = name(target)
    pages = aws.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group_name)
    group = next(
        (g for page in pages for g in page["logGroups"] if g["logGroupName"] == group_name), None
    )
    if target.spec.logs.group:
        if group is None:
            raise PermanentError("LogGroupNotFound", f"logs.group {group_name} does not exist")
        return Found(id=group_name, ours=False)
    if group is None:
        return None
    group_tags = aws.logs.list_tags_log_group(logGroupName=group_name).get("tags", {})
    if not tags.is_owned_by(group_tags, target.owner):
        raise PermanentError(
            "NameConflict", f"a log group named {group_name} exists and is not ours"
        )
    in_sync = group.get("retentionInDays") == target.spec.logs.retention
    return Found(id=group_name, ours=True, in_sync=in_sync)


def ensure(aws: Aws, target: Target) -> Found:
    group_name = name(target)
    if target.spec.logs.group:
        return Found(id=group_name, ours=False)
    try:
        aws.logs.create_log_group(
            logGroupName=group_name, tags=tags.ownership(target.owner, target.spec.tags)
        )
    except aws.logs.exceptions.ResourceAlreadyExistsException:
        observe(aws, target)  # raises NameConflict when it is not ours
    aws.logs.put_retention_policy(
        logGroupName=group_name, retentionInDays=target.spec.logs.retention
    )
    return Found(id=group_name, ours=True)


def tag(aws: Aws, found: Found, values: Mapping[str, str]) -> None:
    aws.logs.tag_log_group(logGroupName=found.id, tags=dict(values))


def delete(aws: Aws, found: Found) -> None:
    if not found.ours:
        return
    with contextlib.suppress(aws.logs.exceptions.ResourceNotFoundException):
        aws.logs.delete_log_group(logGroupName=found.id)
