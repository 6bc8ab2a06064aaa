"""Fixtures for the Python API: the local AWS in the environment, as a user would set it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dask_aws.local import LocalAws
from tests.fixtures.local_aws import in_environment


@pytest.fixture
def simulated_env(
    local_aws_simulated: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment for the simulated local AWS (tasks run nothing)."""
    with in_environment(local_aws_simulated, monkeypatch) as env:
        yield env
