"""Shared plumbing for the Python API tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from dask_aws.local import LocalAws

# Small valid Fargate sizes: the local AWS does not enforce them, AWS would.
SMALL: dict[str, Any] = {
    "scheduler_cpu": 512,
    "scheduler_mem": 1024,
    "worker_cpu": 512,
    "worker_mem": 1024,
}


def task_processes(local: LocalAws, uid: str, aws: Any) -> list[dict[str, Any]]:
    """Container processes still alive for tasks this owner started."""
    arns: set[str] = set()
    for cluster in aws.ecs.list_clusters()["clusterArns"]:
        for status in ("RUNNING", "STOPPED"):
            arns.update(
                aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus=status)["taskArns"]
            )
    return [p for p in local.running_processes() if p["taskArn"] in arns]


def spawn(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A Python child running `code` against the local AWS (env: local_aws_env)."""
    full = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "DASK_AWS_LOOPBACK_ONLY": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
    )


def read_line(process: subprocess.Popen[str], prefix: str, timeout: float = 90.0) -> str:
    """The first stdout line starting with `prefix` (rest of the line)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"child exited ({process.returncode}) before {prefix!r}:\n{err}")
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise AssertionError(f"no {prefix!r} line within {timeout}s")


CHILD_PRELUDE = f"""
import sys
from dask_aws import FargateCluster
SMALL = {SMALL!r}
"""
