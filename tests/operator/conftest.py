"""Operator fixtures on the simulated local AWS: no Dask processes, so tests stay fast."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.operator import operator_fixture

# Like start_operator, against local_aws_simulated: no Dask processes, so tests stay fast.
start_simulated_operator = operator_fixture("local_aws_simulated")


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
