"""Fargate Spot, as ECS runs it: the interruption (SIGTERM to each container's main process,
SIGKILL after the container's own stopTimeout, the task RUNNING with desiredStatus STOPPED
while it drains) and a Spot pool without capacity. Real processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dask_aws.local import LocalAws
from tests.local.helpers import Env, describe, make_env, register, run, wait_status

SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
NO_CAPACITY = (
    "Capacity is unavailable at this time. Please try again later or in a different "
    "availability zone"
)


def sh(script: str, **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", "command": ["sh", "-c", script], **extra}


@pytest.fixture
def env(local_aws: LocalAws) -> Env:
    return make_env(local_aws)


def running_on_spot(env: Env, container: dict[str, Any]) -> str:
    arn = run(env, register(env, [container]), capacityProviderStrategy=SPOT)[0]["taskArn"]
    wait_status(env, arn, "RUNNING")
    return arn


def wait_for_file(path: Path, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}")


def test_spot_interruption_terms_the_main_process_only(
    env: Env, local_aws: LocalAws, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # The main shell traps TERM; its child (same process group) does not. Half a second
    # into its trap the shell notes whether the child is still alive, then exits 0.
    script = (
        f"sleep 60 & child=$!; "
        f"trap 'sleep 0.5; kill -0 $child && echo child-alive >> {marker}; "
        f"echo trapped >> {marker}; exit 0' TERM; "
        f"echo up >> {marker}; wait"
    )
    arn = running_on_spot(env, sh(script))
    wait_for_file(marker, "up")
    local_aws.kill_task(arn, spot=True)
    draining = describe(env, [arn])[0]
    assert draining["desiredStatus"] == "STOPPED"
    assert draining["lastStatus"] == "RUNNING"
    assert draining["stopCode"] == "SpotInterruption"
    stopped = wait_status(env, arn, "STOPPED", timeout=10)
    assert stopped["stopCode"] == "SpotInterruption"
    assert stopped["stoppedReason"] == "Your Spot Task was interrupted."
    assert stopped["containers"][0]["exitCode"] == 0  # the trap's exit
    assert wait_for_file(marker, "trapped").splitlines() == ["up", "child-alive", "trapped"]
    assert not [p for p in local_aws.running_processes() if p["taskArn"] == arn]


def test_spot_interruption_kills_after_the_containers_stop_timeout(
    env: Env, local_aws: LocalAws, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # Ignores TERM; its own stopTimeout (3 s) is below the server's default (5 s).
    script = f"trap '' TERM; echo up >> {marker}; while true; do sleep 0.1; done"
    arn = running_on_spot(env, sh(script, stopTimeout=3))
    wait_for_file(marker, "up")
    started = time.monotonic()
    local_aws.kill_task(arn, spot=True)
    stopped = wait_status(env, arn, "STOPPED", timeout=10)
    elapsed = time.monotonic() - started
    assert stopped["containers"][0]["exitCode"] == 137
    assert stopped["stopCode"] == "SpotInterruption"
    assert 2.8 <= elapsed < 4.5, elapsed


def test_no_spot_capacity_fails_spot_tasks_only(env: Env, local_aws: LocalAws) -> None:
    definition = register(env, [sh("sleep 60")])
    local_aws.set_spot_capacity(False)
    try:
        response = env.ecs.run_task(
            cluster=env.cluster,
            taskDefinition=definition,
            count=2,
            capacityProviderStrategy=SPOT,
            networkConfiguration=env.network(),
        )
        assert response["tasks"] == []
        assert [f["reason"] for f in response["failures"]] == [NO_CAPACITY] * 2
        on_demand = run(env, definition)
        assert len(on_demand) == 1
    finally:
        local_aws.set_spot_capacity(True)
    again = run(env, definition, capacityProviderStrategy=SPOT)
    assert again[0]["capacityProviderName"] == "FARGATE_SPOT"
    for arn in (on_demand[0]["taskArn"], again[0]["taskArn"]):
        env.ecs.stop_task(cluster=env.cluster, task=arn)
