"""Operator fixtures on the simulated local AWS: no Dask processes, so tests stay fast."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.operator import OperatorProcess


@pytest.fixture
def start_simulated_operator(
    k8s: Any, local_aws_simulated: Any, k8s_namespace: str, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Like start_operator, against local_aws_simulated. Overrides: `endpoint` the AWS URL
    (e.g. a proxy in front of it), `namespace` the one watched, `kubeconfig` whom it runs as."""
    started: list[OperatorProcess] = []

    def start(
        env: dict[str, str] | None = None,
        endpoint: str | None = None,
        namespace: str | None = None,
        kubeconfig: Path | None = None,
    ) -> OperatorProcess:
        aws_env = dict(local_aws_simulated.env())
        if endpoint:
            aws_env["AWS_ENDPOINT_URL"] = endpoint
        process = OperatorProcess(
            kubeconfig or k8s.kubeconfig,
            aws_env,
            namespace or k8s_namespace,
            tmp_path / f"operator-{len(started)}.log",
            env,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
        print(f"--- {process.log.name} ---\n{process.log_tail(200)}")  # shown when a test fails


@pytest.fixture
def short_namespace(k8s: Any) -> Iterator[str]:
    """A new namespace with a two-character name, for names near every length limit
    (an AWS owner tag holds namespace/name and takes at most 256 characters)."""
    chars = string.ascii_lowercase + string.digits
    for char in random.sample(chars, len(chars)):
        name = f"n{char}"
        if k8s.kubectl("create", "namespace", name, check=False).returncode == 0:
            break
    else:
        pytest.fail("no free two-character namespace")
    yield name
    k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
