"""Operator fixtures on the simulated local AWS: no Dask processes, so tests stay fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.operator import OperatorProcess


@pytest.fixture
def start_simulated_operator(
    k8s: Any, local_aws_simulated: Any, k8s_namespace: str, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Like start_operator, against local_aws_simulated; `endpoint` overrides the AWS URL
    (e.g. a proxy in front of it)."""
    started: list[OperatorProcess] = []

    def start(env: dict[str, str] | None = None, endpoint: str | None = None) -> OperatorProcess:
        aws_env = dict(local_aws_simulated.env())
        if endpoint:
            aws_env["AWS_ENDPOINT_URL"] = endpoint
        process = OperatorProcess(
            k8s.kubeconfig,
            aws_env,
            k8s_namespace,
            tmp_path / f"operator-{len(started)}.log",
            env,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
        print(f"--- {process.log.name} ---\n{process.log_tail(200)}")  # shown when a test fails
