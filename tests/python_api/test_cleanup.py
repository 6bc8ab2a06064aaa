"""A cluster that is never closed still leaves nothing behind: interpreter exit, SIGTERM,
and garbage collection (after asyncio.run) each delete what it created."""

from __future__ import annotations

import signal
import time

import pytest

from dask_aws.aws.task_definitions import STOP_TIMEOUT
from dask_aws.local import LocalAws
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.local_aws import local_aws_env
from tests.python_api.helpers import CHILD_PRELUDE, read_line, spawn, task_processes

pytestmark = pytest.mark.slow

READY = (
    CHILD_PRELUDE
    + """
cluster = FargateCluster(n_workers=1, quiet=True, **SMALL)
print("UID", cluster.uid, flush=True)
"""
)


def _assert_nothing_left(local: LocalAws, uid: str) -> None:
    aws, _ = aws_for(local.endpoint_url)
    assert tagged_resources(aws, uid) == []
    assert task_processes(local, uid, aws) == []


def test_interpreter_exit_without_close(local_aws: LocalAws) -> None:
    child = spawn(READY + "sys.exit(0)\n", local_aws_env(local_aws))
    uid = read_line(child, "UID ")
    ready = time.monotonic()
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    # Its worker was still starting: had the scheduler gone first, the worker's task would
    # have waited out its stop timeout (62 s before the scheduler was made to wait).
    assert time.monotonic() - ready < STOP_TIMEOUT
    assert "interpreter is exiting" in err
    assert "IOLoop is closed" not in err and "Traceback" not in err
    _assert_nothing_left(local_aws, uid)


def test_sigterm_without_close(local_aws: LocalAws) -> None:
    child = spawn(READY + "sys.stdin.read()\n", local_aws_env(local_aws))
    uid = read_line(child, "UID ")
    aws, _ = aws_for(local_aws.endpoint_url)
    assert tagged_resources(aws, uid) != []
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGTERM, err  # still dies of the signal
    assert "received SIGTERM" in err
    _assert_nothing_left(local_aws, uid)


GC_CHILD = (
    CHILD_PRELUDE
    + """
import asyncio, gc
from dask_aws.cluster import cleanup

async def main():
    cluster = await FargateCluster(asynchronous=True, n_workers=1, quiet=True, **SMALL)
    print("UID", cluster.uid, flush=True)

asyncio.run(main())  # cancels the cluster's background tasks; nothing refers to it any more
gc.collect()
print("LEFT", len(cleanup._LIVE), flush=True)
sys.stdin.read()  # stay alive: the deletion must not wait for interpreter exit
"""
)


def test_garbage_collection_without_close(local_aws: LocalAws) -> None:
    child = spawn(GC_CHILD, local_aws_env(local_aws))
    try:
        uid = read_line(child, "UID ")
        ready = time.monotonic()
        assert read_line(child, "LEFT ") == "0"
        assert time.monotonic() - ready < STOP_TIMEOUT  # no worker waited out its timeout
        _assert_nothing_left(local_aws, uid)  # while the process still runs
    finally:
        _, err = child.communicate("", timeout=60)
    assert "garbage collected" in err
    assert "IOLoop is closed" not in err
