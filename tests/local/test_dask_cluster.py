"""A real Dask cluster on the local "ECS": scheduler and worker tasks, a Client, logs."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest
from distributed import Client

from dask_aws.local import LocalAws
from tests.local.helpers import make_env, register, run, task_ip, wait_status

pytestmark = pytest.mark.slow


def awslogs(group: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": group,
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "dask",
        },
    }


def test_scheduler_and_worker_tasks_compute(local_aws: LocalAws) -> None:
    env = make_env(local_aws)
    group = f"/dask-aws/{env.cluster}"
    env.logs.create_log_group(logGroupName=group)
    scheduler_td = register(
        env,
        [
            {
                "name": "scheduler",
                "image": "ghcr.io/dask/dask:latest",
                "command": ["dask", "scheduler"],
                "environment": [
                    {
                        "name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES",
                        "value": "['distributed.http.health']",
                    }
                ],
                "logConfiguration": awslogs(group),
            }
        ],
    )
    started = time.monotonic()
    scheduler = run(env, scheduler_td)[0]
    assert scheduler["lastStatus"] == "PROVISIONING"
    scheduler = wait_status(env, scheduler["taskArn"], "RUNNING")
    to_running = time.monotonic() - started
    ip = task_ip(scheduler)
    assert ip.startswith("127.") and ip != "127.0.0.1"

    worker_td = register(
        env,
        [
            {
                "name": "worker",
                "image": "ghcr.io/dask/dask:latest",
                "command": ["dask", "worker", "--nthreads", "1", "--no-nanny"],
                "logConfiguration": awslogs(group),
            }
        ],
    )
    worker = run(
        env,
        worker_td,
        overrides={
            "containerOverrides": [
                {
                    "name": "worker",
                    "command": [
                        "dask",
                        "worker",
                        f"tcp://{ip}:8786",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                    ],
                }
            ]
        },
    )[0]
    wait_status(env, worker["taskArn"], "RUNNING")
    processes = {
        p["container"]: p
        for p in local_aws.running_processes()
        if p["taskArn"] in (scheduler["taskArn"], worker["taskArn"])
    }
    assert "--host" in processes["worker"]["argv"]
    assert processes["scheduler"]["argv"][-2:] == ["--dashboard-address", f"{ip}:8787"]

    with Client(f"tcp://{ip}:8786", timeout=60) as client:
        client.wait_for_workers(1, timeout=60)
        assert client.submit(sum, range(100)).result() == 4950
        (worker_address,) = client.scheduler_info()["workers"]
        assert worker_address.startswith(f"tcp://{task_ip(describe_one(env, worker))}:")
    ready = time.monotonic() - started
    print(f"scheduler RUNNING after {to_running:.2f}s; computed after {ready:.2f}s")

    for task in (worker, scheduler):
        env.ecs.stop_task(cluster=env.cluster, task=task["taskArn"], reason="test done")
    for task in (worker, scheduler):
        stopped = wait_status(env, task["taskArn"], "STOPPED")
        assert stopped["stopCode"] == "UserInitiated"
        assert stopped["stoppedReason"] == "test done"
        assert stopped["containers"][0]["exitCode"] == 0
        assert stopped["stoppedAt"] >= stopped["startedAt"]
    for process in processes.values():
        assert (
            not psutil.pid_exists(process["pid"])
            or psutil.Process(process["pid"]).status() == psutil.STATUS_ZOMBIE
        )

    stream = f"dask/scheduler/{scheduler['taskArn'].rsplit('/', 1)[-1]}"
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline:
        events = env.logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
        messages = [e["message"] for e in events]
        if any("Scheduler at:" in m for m in messages):
            break
        time.sleep(0.3)
    assert any("Scheduler at:" in m and f"tcp://{ip}:8786" in m for m in messages), messages
    found = env.logs.filter_log_events(logGroupName=group, filterPattern="Starting worker")
    assert found["events"], "worker log lines missing"


def describe_one(env: Any, task: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = env.ecs.describe_tasks(cluster=env.cluster, tasks=[task["taskArn"]])[
        "tasks"
    ][0]
    return result
