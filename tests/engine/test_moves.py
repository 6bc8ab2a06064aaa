"""Spec changes that move a resource: what was created where the spec used to point is
removed (or, at deletion, retained) wherever it is, and nothing tagged is left behind."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import ClusterStatus
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import target
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for

REGIONS = ("us-east-1", "us-west-2")
REASONS: dict[int, set[str]] = {}  # the Event reasons of the steps to each Ready result
MOVED_KIND = {
    "logs.group": "log-group",
    "network.securityGroups": "security-group",
    "iam.executionRoleArn": "execution-role",
    "iam.taskRoleArn": "task-role",
}


def _ready(aws: Aws, tgt: Target, previous: ClusterStatus) -> Result:
    """Reconcile until Ready, each step seeing the status the last one wrote."""
    last: list[Result] = []
    reasons: set[str] = set()

    def step() -> Result | None:
        result = reconcile(aws, tgt, previous=last[0].status if last else previous)
        assert result.error is None, result.error.message
        last[:] = [result]
        reasons.update(e.reason for e in result.events)
        return result if result.ready else None

    ready = wait_for(step, 30, lambda: f"Ready: {last[0].status.message}", interval=0.2)
    REASONS[id(ready)] = reasons
    return ready


def _removed(aws: Aws, tgt: Target, last: Result, kind: str) -> Result | None:
    result = reconcile(aws, tgt, previous=last.status)
    REASONS[id(result)] = REASONS[id(last)] | {e.reason for e in result.events}
    last.status = result.status
    return result if kind not in {e.kind for e in result.status.aws.created} else None


def _changed(tgt: Target, **changes: Any) -> Target:
    spec = tgt.spec.model_dump(by_alias=True, exclude_none=True) | changes
    return Target(tgt.owner, DaskAwsClusterSpec.model_validate(spec))


def _leaks(aws: Aws, tgt: Target) -> dict[str, list[str]]:
    return {r: tagged_resources(aws.in_region(r), tgt.owner.uid) for r in REGIONS}


def _user_resources(aws: Aws) -> dict[str, Any]:
    name = f"user-{uuid.uuid4().hex[:8]}"
    aws.logs.create_log_group(logGroupName=f"/user/{name}")
    vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    group = aws.ec2.create_security_group(GroupName=name, Description="x", VpcId=vpc["VpcId"])
    trust = '{"Version":"2012-10-17","Statement":[]}'
    role = aws.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    return {
        "region": {"region": "us-west-2"},
        "logs.group": {"logs": {"group": f"/user/{name}"}},
        "network.securityGroups": {"network": {"securityGroups": [group["GroupId"]]}},
        "iam.executionRoleArn": {"iam": {"executionRoleArn": role}},
        "iam.taskRoleArn": {"iam": {"taskRoleArn": role}},
    }


@pytest.mark.parametrize(
    "field",
    ["region", "logs.group", "network.securityGroups", "iam.executionRoleArn", "iam.taskRoleArn"],
)
def test_a_moved_resource_is_removed_and_delete_leaves_nothing(
    local_aws_simulated: Any, field: str
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target(f"moves-{field.replace('.', '-').lower()}")
    first = _ready(aws, tgt, ClusterStatus())
    moved = _changed(tgt, **_user_resources(aws)[field])
    regional = aws.in_region(moved.spec.region or "us-east-1")
    second = _ready(regional, moved, first.status)
    if field == "network.securityGroups":
        # The old group is removed once the tasks that were in it have stopped.
        second = wait_for(
            lambda: _removed(regional, moved, second, "security-group"), 30, "old group removed"
        )
    records = second.status.aws.created
    leftovers = _leaks(aws, tgt)
    if field == "region":
        assert {e.region for e in records} == {"", "us-west-2"}
        # In the old region only the IAM roles remain: they are global and still in use.
        assert [arn for arn in leftovers["us-east-1"] if ":role/" not in arn] == []
    else:
        # The resource the spec stopped using is no longer recorded, and gone from AWS.
        old = next(e for e in first.status.aws.created if e.kind == MOVED_KIND[field])
        assert MOVED_KIND[field] not in {e.kind for e in records}
        assert old.id not in leftovers["us-east-1"]
        assert "RemovedUnused" in REASONS[id(second)]
    assert delete(regional, moved, records).done
    assert _leaks(aws, tgt) == {r: [] for r in REGIONS}


def test_unreadable_spec_deletes_what_status_records_in_its_region(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = _changed(target("unreadable"), region="us-west-2")
    west = aws.in_region("us-west-2")
    ready = _ready(west, tgt, ClusterStatus())
    # As the operator does for a spec it cannot parse: a default spec, the records only.
    blind = Target(tgt.owner, DaskAwsClusterSpec())
    assert delete(aws, blind, ready.status.aws.created, discover=False).done
    assert _leaks(aws, tgt) == {r: [] for r in REGIONS}


def test_retain_keeps_every_recorded_resource_whatever_the_spec(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = _changed(target("retained"), region="us-west-2", deletionPolicy="Retain")
    west = aws.in_region("us-west-2")
    ready = _ready(west, tgt, ClusterStatus())
    blind = Target(tgt.owner, DaskAwsClusterSpec())
    result = delete(aws, blind, ready.status.aws.created, discover=False, retain=True)
    assert result.done and result.events[0].reason == "Retained"
    kept = _leaks(aws, tgt)["us-west-2"]
    assert any(":cluster/" in arn for arn in kept) and any(":task/" in arn for arn in kept)
    assert delete(west, _changed(tgt, deletionPolicy="Delete"), ready.status.aws.created).done
    assert _leaks(aws, tgt) == {r: [] for r in REGIONS}
