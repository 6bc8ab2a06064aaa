"""Simulated mode: tasks move through ECS states on loopback addresses, no processes."""

from __future__ import annotations

import ipaddress
import time

import pytest

from dask_aws.local import LocalAws
from tests.local.helpers import describe, make_env, register, run, task_ip, wait_status

SCHEDULER = [{"name": "scheduler", "image": "ghcr.io/dask/dask", "command": ["dask", "scheduler"]}]


def test_run_describe_stop(local_aws_simulated: LocalAws) -> None:
    env = make_env(local_aws_simulated)
    td = register(env, SCHEDULER)
    tasks = run(env, td, count=3)
    assert [t["lastStatus"] for t in tasks] == ["PROVISIONING"] * 3
    arns = [t["taskArn"] for t in tasks]
    # No drift: many describes later the tasks still read RUNNING.
    for _ in range(8):
        described = describe(env, arns)
    assert {t["lastStatus"] for t in described} == {"RUNNING"}
    ips = [task_ip(t) for t in described]
    assert len(set(ips)) == 3
    for ip in ips:
        address = ipaddress.IPv4Address(ip)
        assert address.is_loopback and ip != "127.0.0.1"
    for task in described:
        assert task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == task_ip(task)
        assert task["launchType"] == "FARGATE"
        assert task["startedAt"]
    enis = env.ec2.describe_network_interfaces(
        Filters=[{"Name": "group-id", "Values": [env.security_group]}]
    )["NetworkInterfaces"]
    assert sorted(e["PrivateIpAddress"] for e in enis) == sorted(ips)

    stopped = env.ecs.stop_task(cluster=env.cluster, task=arns[0], reason="bye")["task"]
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "bye"
    assert stopped["stoppedAt"] and stopped["stoppingAt"]
    assert stopped["containers"][0]["lastStatus"] == "STOPPED"
    assert "exitCode" in stopped["containers"][0]
    assert local_aws_simulated.running_processes() == []


def test_faults_in_simulated_mode(local_aws_simulated: LocalAws) -> None:
    env = make_env(local_aws_simulated)
    td = register(env, SCHEDULER)
    crash, spot = (t["taskArn"] for t in run(env, td, count=2))
    wait_status(env, crash, "RUNNING")
    local_aws_simulated.kill_task(crash)
    local_aws_simulated.kill_task(spot, spot=True)
    crashed, interrupted = describe(env, [crash, spot])
    assert crashed["lastStatus"] == "STOPPED"
    assert crashed["stopCode"] == "EssentialContainerExited"
    assert crashed["containers"][0]["exitCode"] == 137
    assert interrupted["stopCode"] == "SpotInterruption"


def test_hundreds_of_tasks_are_fast(local_aws_simulated: LocalAws) -> None:
    env = make_env(local_aws_simulated)
    td = register(env, SCHEDULER)
    started = time.monotonic()
    arns = [t["taskArn"] for _ in range(20) for t in run(env, td, count=10)]
    described = [t for i in range(0, len(arns), 100) for t in describe(env, arns[i : i + 100])]
    elapsed = time.monotonic() - started
    assert len(described) == 200
    assert {t["lastStatus"] for t in described} == {"RUNNING"}
    assert len({task_ip(t) for t in described}) == 200
    for arn in arns:
        env.ecs.stop_task(cluster=env.cluster, task=arn)
    assert {t["lastStatus"] for t in describe(env, arns[:100])} == {"STOPPED"}
    assert elapsed < 20, elapsed


@pytest.mark.slow  # its own server: a reset would wipe the shared one
def test_state_manager_and_reset_cannot_strand_tasks() -> None:
    import json
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with LocalAws(simulated=True) as aws:
        env = make_env(aws)
        arn = run(env, register(env, SCHEDULER))[0]["taskArn"]
        # Even moto's "immediate" progression does not move a task the data plane owns.
        request = urllib.request.Request(
            f"{aws.endpoint_url}/moto-api/state-manager/set-transition",
            data=json.dumps(
                {"model_name": "ecs::task", "transition": {"progression": "immediate"}}
            ).encode(),
            method="POST",
        )
        opener.open(request, timeout=10).close()
        assert describe(env, [arn])[0]["lastStatus"] == "RUNNING"
        aws.fail_next("ecs:ListClusters", 5)
        opener.open(
            urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST"), timeout=10
        ).close()
        assert aws.tasks() == []
        assert aws._call("GET", "faults") == {
            "failNext": {},
            "capacity": [],
            "spotAvailable": True,
        }
