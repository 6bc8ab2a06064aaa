"""Fixtures for the Python API: the local AWS in the environment, as a user would set it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dask_aws.local import LocalAws
from tests.fixtures.local_aws import local_aws_env


@pytest.fixture
def simulated_env(
    local_aws_simulated: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment for the simulated local AWS (tasks run nothing)."""
    env = local_aws_env(local_aws_simulated)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    yield env
