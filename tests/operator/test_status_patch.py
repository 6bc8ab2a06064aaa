"""The status patch holds only what changed (controller/diff.py)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from dask_aws.controller import handlers, step
from dask_aws.controller.diff import Written, merge_patch, status_patch

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


def test_a_lagging_copy_does_not_hide_what_the_last_patch_wrote() -> None:
    # Step 1 patched pending 2 while scaling; kopf's copy for step 2 still shows the status
    # before that patch (pending 0), so against the copy alone step 2's pending 0 is "no
    # change" and the object would keep pending 2 until a later quiet step rewrote it.
    before = {"phase": "Running", "workers": {"running": 2, "pending": 0}}
    scaling = {"phase": "Scaling", "workers": {"running": 2, "pending": 2}}
    ready = {"phase": "Running", "workers": {"running": 4, "pending": 0}}
    assert merge_patch(before, ready) == {"workers": {"running": 4}}
    assert status_patch(before, Written(scaling, "7"), ready, "8") == {
        "phase": "Running",
        "workers": {"running": 4, "pending": 0},
    }


def test_a_copy_from_before_the_last_patch_is_not_diffed_against() -> None:
    # kopf's copy still has the version it had when the last patch went: it predates that
    # patch, and against it a quiet step would send its whole status again.
    ready = {"phase": "Running", "workers": {"running": 4, "pending": 0}}
    assert status_patch({}, Written(ready, "7"), ready, "7") == {}
    assert status_patch({}, Written(ready, "7"), {**ready, "phase": "Scaling"}, "7") == {
        "phase": "Scaling"
    }


def test_a_newer_copy_shows_what_somebody_else_wrote() -> None:
    ready = {"phase": "Running", "message": None}
    edited = {"phase": "Running", "message": "set by hand"}
    assert status_patch(edited, Written(ready, "7"), ready, "9") == {"message": None}


def test_nothing_is_sent_when_the_copy_and_the_last_patch_agree() -> None:
    current = {k: v for k, v in STATUS.items() if v is not None}
    assert status_patch(current, Written(STATUS, "3"), STATUS, "4") == {}
    assert status_patch(current, None, STATUS, "4") == {}


def test_a_step_reads_the_status_it_wrote_not_kopfs_lagging_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At 1,000 objects kopf's copy fell minutes behind: a quiet step that took the copy from
    # before the first status write for the status restarted every condition's
    # lastTransitionTime and the cost's accrual.
    written = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t0"}],
        "cost": {"hourlyUsd": "0.1", "accruedUsd": "0", "asOf": "t0"},
    }
    seen: list[Any] = []

    def step_reading_its_status(body: Any, *_: Any, **__: Any) -> step.StepOutput:
        seen.append(body.get("status"))
        return step.StepOutput(status=written)

    monkeypatch.setattr(step, "reconcile_object", step_reading_its_status)
    meta = {"uid": "u", "name": "c", "namespace": "n", "resourceVersion": "7"}
    lagging = {"metadata": meta, "spec": {}, "status": {}}
    memo: dict[str, Any] = {}
    indexes = {"policies_by_namespace": {}, "clusters_by_namespace": {}}
    patches = [kopf.Patch(), kopf.Patch()]
    for patch in patches:
        handlers.resync(body=lagging, memo=memo, patch=patch, namespace="n", **indexes)
    # The first step of this process has only kopf's copy (listed at start-up); the next
    # reads what the first wrote, however old kopf's copy is, and writes nothing again.
    assert seen == [{}, written]
    assert patches[0] == {"status": written} and patches[1] == {}
    assert lagging["status"] == {}  # kopf's own copy is left as kopf keeps it
