"""The status patch holds only what changed (controller/diff.py)."""

from __future__ import annotations

from dask_aws.controller.diff import merge_patch

STATUS = {
    "phase": "Running",
    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t0"}],
    "aws": {"clusterArn": "arn:c", "securityGroupId": "sg-1"},
    "message": None,
}


def test_an_unchanged_status_is_an_empty_patch() -> None:
    current = {k: v for k, v in STATUS.items() if v is not None}
    assert merge_patch(current, STATUS) == {}


def test_only_changed_leaves_are_sent_and_lists_whole() -> None:
    desired = {
        **STATUS,
        "aws": {"clusterArn": "arn:c", "securityGroupId": "sg-2"},
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "t1"}],
    }
    assert merge_patch(STATUS, desired) == {
        "aws": {"securityGroupId": "sg-2"},
        "conditions": desired["conditions"],
    }


def test_none_removes_only_keys_that_are_there() -> None:
    current = {**STATUS, "message": "AWS refused 3 tasks"}
    assert merge_patch(current, STATUS) == {"message": None}
    assert merge_patch({}, {"message": None}) == {}


def test_a_first_status_is_sent_whole() -> None:
    assert merge_patch(None, {"phase": "Creating", "aws": {"clusterArn": "arn:c"}}) == {
        "phase": "Creating",
        "aws": {"clusterArn": "arn:c"},
    }
