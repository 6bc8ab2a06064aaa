"""The latency profile: tasks stay PROVISIONING and PENDING as long as Fargate's do.

The servers here run `aws:0.03`: PROVISIONING 0.09-1.35 s, PENDING 0.3-2.7 s."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.local import LocalAws
from dask_aws.local.latency import PENDING, PROVISIONING, LatencyProfile, Timers
from tests.local.helpers import describe, make_env, register, run, wait_status

SCALE = 0.03
SEED = 11
SCHEDULER = [{"name": "scheduler", "image": "ghcr.io/dask/dask", "command": ["dask", "scheduler"]}]


# -- the draws -----------------------------------------------------------------------------------
def test_draws_are_reproducible_and_within_the_documented_bounds() -> None:
    profile = LatencyProfile.parse("aws", seed=SEED)
    draws = [profile.delays(k) for k in range(1, 2001)]
    assert draws == [LatencyProfile.parse("aws", seed=SEED).delays(k) for k in range(1, 2001)]
    assert draws != [LatencyProfile.parse("aws", seed=SEED + 1).delays(k) for k in range(1, 2001)]
    provisioning = [d.provisioning for d in draws if d is not None]
    pending = [d.pending for d in draws if d is not None]
    assert len(provisioning) == len(pending) == 2000
    for phase, values in ((PROVISIONING, provisioning), (PENDING, pending)):
        assert phase.low <= min(values) and max(values) <= phase.high
        assert statistics.median(values) == pytest.approx(phase.median, rel=0.1)
    assert statistics.median(provisioning) == pytest.approx(10.0, rel=0.1)
    assert statistics.median(pending) == pytest.approx(30.0, rel=0.1)
    scaled = LatencyProfile.parse(f"aws:{SCALE}", seed=SEED).delays(5)
    full = profile.delays(5)
    assert scaled is not None and full is not None
    assert scaled.provisioning == pytest.approx(full.provisioning * SCALE)
    assert scaled.pending == pytest.approx(full.pending * SCALE)


def test_profile_syntax() -> None:
    assert LatencyProfile.parse(None).delays(1) is None
    assert str(LatencyProfile.parse("none")) == "none"
    assert str(LatencyProfile.parse("aws")) == "aws"
    assert str(LatencyProfile.parse("AWS:0.1", seed=3)) == "aws:0.1"
    assert LatencyProfile.parse("aws:0.1", seed=3).seed == 3
    for bad in ("fast", "aws:0", "aws:-1", "aws:x", "none:2"):
        with pytest.raises(ValueError):
            LatencyProfile.parse(bad)
    with pytest.raises(ValueError):
        LocalAws(latency="slow")


def test_timers_fire_in_order_and_close_drops_the_rest() -> None:
    timers = Timers()
    fired: list[str] = []
    done = threading.Event()

    def last() -> None:
        fired.append("b")
        done.set()

    timers.call_later(0.1, last)
    timers.call_later(0.02, lambda: fired.append("a"))
    timers.call_later(30.0, lambda: fired.append("never"))
    assert done.wait(5.0)
    assert fired == ["a", "b"] and timers.pending() == 1
    timers.close()
    assert timers.pending() == 0
    assert not any(t.name == "local-aws-latency" and t.is_alive() for t in threading.enumerate())
    timers.call_later(0.0, lambda: fired.append("after close"))
    time.sleep(0.05)
    assert fired == ["a", "b"]


# -- a server under aws:0.05 ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_aws() -> Iterator[LocalAws]:
    with LocalAws(simulated=True, latency=f"aws:{SCALE}", latency_seed=SEED) as aws:
        yield aws


def _drawn(aws: LocalAws, arn: str) -> dict[str, float]:
    (task,) = [t for t in aws.tasks() if t["taskArn"] == arn]
    latency: dict[str, float] = task["latency"]
    return latency


def _eni_status(task: dict[str, Any]) -> str:
    (attachment,) = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    return str(attachment["status"])


def test_task_passes_through_provisioning_and_pending(slow_aws: LocalAws) -> None:
    env = make_env(slow_aws)
    td = register(env, SCHEDULER)
    started = time.monotonic()
    (task,) = run(env, td)
    arn = task["taskArn"]
    assert task["lastStatus"] == "PROVISIONING"
    drawn = _drawn(slow_aws, arn)
    # The draw is the profile's, for some ordinal of this server (reproducible).
    profile = LatencyProfile.parse(f"aws:{SCALE}", seed=SEED)
    expected = [profile.delays(k) for k in range(1, 200)]
    assert any(
        d is not None
        and d.provisioning == pytest.approx(drawn["provisioning"])
        and d.pending == pytest.approx(drawn["pending"])
        for d in expected
    )
    seen: list[tuple[str, str, float]] = []  # (lastStatus, ENI status, seconds)
    named: list[tuple[str, list[str]]] = []  # (lastStatus, ENI details' names)
    while True:
        (now,) = describe(env, [arn])
        status = now["lastStatus"]
        if not seen or seen[-1][0] != status:
            seen.append((status, _eni_status(now), time.monotonic() - started))
            named.append((status, sorted(d["name"] for d in now["attachments"][0]["details"])))
        if status == "RUNNING" or time.monotonic() - started > 15:
            break
        time.sleep(0.02)
    assert [s for s, _, _ in seen] == ["PROVISIONING", "PENDING", "RUNNING"]
    assert [e for _, e, _ in seen] == ["PRECREATED", "ATTACHED", "ATTACHED"]
    # As in AWS, a PRECREATED interface names its subnet only; the address comes with ATTACHED.
    assert named[0] == ("PROVISIONING", ["subnetId"])
    assert "privateIPv4Address" in named[1][1] and "networkInterfaceId" in named[1][1]
    assert task["attachments"][0]["details"] == [
        d for d in task["attachments"][0]["details"] if d["name"] == "subnetId"
    ]
    to_pending, to_running = seen[1][2], seen[2][2]
    assert to_pending == pytest.approx(drawn["provisioning"], abs=0.4)
    assert to_running == pytest.approx(drawn["provisioning"] + drawn["pending"], abs=0.4)
    assert to_pending >= drawn["provisioning"] - 0.05
    assert now["pullStartedAt"] and now["startedAt"] and now["connectivity"] == "CONNECTED"


@pytest.mark.parametrize("phase", ["PROVISIONING", "PENDING"])
def test_stop_task_while_waiting_stops_it_without_running(slow_aws: LocalAws, phase: str) -> None:
    env = make_env(slow_aws)
    td = register(env, SCHEDULER)
    (task,) = run(env, td)
    arn = task["taskArn"]
    if phase == "PENDING":
        wait_status(env, arn, "PENDING", timeout=10)
    stopped = env.ecs.stop_task(cluster=env.cluster, task=arn, reason="changed my mind")["task"]
    drawn = _drawn(slow_aws, arn)
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "changed my mind"
    assert "startedAt" not in stopped
    # Past the time it would have started, it is still STOPPED and never ran.
    time.sleep(min(drawn["provisioning"] + drawn["pending"], 1.5) + 0.2)
    (later,) = describe(env, [arn])
    assert later["lastStatus"] == "STOPPED" and "startedAt" not in later
    assert _eni_status(later) == "DELETED"


def test_default_profile_starts_at_once(local_aws_simulated: LocalAws) -> None:
    assert str(local_aws_simulated.latency) == "none"
    env = make_env(local_aws_simulated)
    td = register(env, SCHEDULER)
    (task,) = run(env, td)
    (now,) = describe(env, [task["taskArn"]])
    assert now["lastStatus"] == "RUNNING"
    (entry,) = [t for t in local_aws_simulated.tasks() if t["taskArn"] == task["taskArn"]]
    assert entry["latency"] is None


def test_process_mode_waits_then_runs_and_stops_clean() -> None:
    command = ["python", "-c", "import time; time.sleep(60)"]
    with LocalAws(latency=f"aws:{SCALE}", latency_seed=SEED, stop_timeout=1.0) as aws:
        env = make_env(aws)
        td = register(env, [{"name": "sleeper", "image": "python", "command": command}])
        waiting, running = (t["taskArn"] for t in run(env, td, count=2))
        wait_status(env, waiting, "PENDING", timeout=10)
        assert not [p for p in aws.running_processes() if p["taskArn"] == waiting]
        env.ecs.stop_task(cluster=env.cluster, task=waiting)
        wait_status(env, running, "RUNNING", timeout=15)
        assert [p["taskArn"] for p in aws.running_processes()] == [running]
        (stopped,) = describe(env, [waiting])
        assert stopped["lastStatus"] == "STOPPED" and "startedAt" not in stopped
        # A third task left PROVISIONING when the server stops: nothing runs, nothing leaks.
        run(env, td)
    assert not aws.running
