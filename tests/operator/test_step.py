"""The operator's step, without an API server: what it leaves alone."""

from __future__ import annotations

from typing import Any

import pytest

from dask_aws.controller import accounts, step
from dask_aws.controller.config import OperatorConfig
from dask_aws.controller.state import ObjectState


def test_an_object_being_deleted_is_left_to_the_delete_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_aws(*_: Any) -> Any:
        raise AssertionError("reconciled an object that is being deleted")

    monkeypatch.setattr(accounts, "aws_for", no_aws)
    # Deletion bumps metadata.generation; that must not look like a spec change to reconcile.
    body = {
        "metadata": {
            "uid": "u",
            "name": "x",
            "namespace": "n",
            "generation": 2,
            "deletionTimestamp": "2026-11-27T12:00:00Z",
        },
        "spec": {},
    }
    state = ObjectState(last_generation=1)
    out = step.reconcile_object(body, OperatorConfig(), state, force=True)
    assert out.status is None and out.events == [] and state.last_generation == 1
