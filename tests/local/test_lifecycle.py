"""ECS task lifecycle on real processes: essential containers, failures, stops, secrets."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

from dask_aws.local import LocalAws
from tests.local.helpers import Env, make_env, register, run, unique, wait_status

pytestmark = pytest.mark.slow

PY = sys.executable


def py(code: str, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "python:3.11", "command": [PY, "-c", code], **extra}


SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(120)"
IGNORES_TERM = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('up', flush=True)\ntime.sleep(120)"
)


@pytest.fixture
def env(local_aws: LocalAws) -> Env:
    return make_env(local_aws)


def logs_of(env: Env, group: str, stream: str, want: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            events = env.logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
        except env.logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(want in m for m in messages):
            return messages
        time.sleep(0.2)
    raise AssertionError(f"{want!r} not in {messages}")


def test_essential_container_exit_stops_the_task(env: Env, local_aws: LocalAws) -> None:
    td = register(
        env,
        [
            py("import time, sys\ntime.sleep(0.5)\nsys.exit(3)", name="main"),
            py(SLEEPER, name="sidecar", essential=False),
        ],
    )
    arn = run(env, td)[0]["taskArn"]
    wait_status(env, arn, "RUNNING")
    task = wait_status(env, arn, "STOPPED", timeout=20)
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    assert codes["main"] == 3
    assert codes["sidecar"] == 143  # stopped with SIGTERM (128 + 15)
    assert all(c["lastStatus"] == "STOPPED" for c in task["containers"])
    assert task["stoppingAt"] and task["stoppedAt"] and task["startedAt"]
    assert not [p for p in local_aws.running_processes() if p["taskArn"] == arn]


def test_non_essential_exit_keeps_the_task(env: Env) -> None:
    td = register(env, [py(SLEEPER), py("print('bye')", name="init", essential=False)])
    arn = run(env, td)[0]["taskArn"]
    task = wait_status(env, arn, "RUNNING")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        task = env.ecs.describe_tasks(cluster=env.cluster, tasks=[arn])["tasks"][0]
        init = next(c for c in task["containers"] if c["name"] == "init")
        if init["lastStatus"] == "STOPPED":
            break
        time.sleep(0.1)
    assert init.get("exitCode") == 0 and task["lastStatus"] == "RUNNING"
    env.ecs.stop_task(cluster=env.cluster, task=arn)
    wait_status(env, arn, "STOPPED")


def test_missing_executable_and_secret_fail_to_start(env: Env) -> None:
    missing = register(env, [{"name": "main", "image": "x", "command": ["no-such-binary-xyz"]}])
    arn = run(env, missing)[0]["taskArn"]
    task = wait_status(env, arn, "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert "CannotStartContainerError" in task["stoppedReason"]
    assert "startedAt" not in task

    secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    bad_secret = register(env, [py(SLEEPER, secrets=[{"name": "S", "valueFrom": secret_arn}])])
    arn = run(env, bad_secret)[0]["taskArn"]
    task = wait_status(env, arn, "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("ResourceInitializationError")


def test_environment_secrets_and_overrides_reach_the_process(env: Env) -> None:
    group = f"/env/{env.cluster}"
    env.logs.create_log_group(logGroupName=group)
    secrets = env.session.client("secretsmanager")
    ssm = env.session.client("ssm")
    plain = secrets.create_secret(Name=unique("plain"), SecretString="s3cret")["ARN"]
    doc = secrets.create_secret(Name=unique("doc"), SecretString=json.dumps({"pw": "hunter2"}))
    parameter = f"/dask-aws/{unique('p')}"
    ssm.put_parameter(Name=parameter, Value="from-ssm", Type="SecureString")
    code = (
        "import os, json\nkeys = ['TD', 'RUN', 'PLAIN', 'JSONKEY', 'SSM', 'DASK_AWS_TASK_IP',"
        " 'AWS_EXECUTION_ENV']\nprint(json.dumps({k: os.environ.get(k) for k in keys}))"
    )
    td = register(
        env,
        [
            py(
                "raise SystemExit(9)",
                environment=[{"name": "TD", "value": "td"}, {"name": "RUN", "value": "td"}],
                secrets=[
                    {"name": "PLAIN", "valueFrom": plain},
                    {"name": "JSONKEY", "valueFrom": f"{doc['ARN']}:pw::"},
                    {"name": "SSM", "valueFrom": parameter},
                ],
                logConfiguration={
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": group,
                        "awslogs-stream-prefix": "p",
                        "awslogs-region": "us-east-1",
                    },
                },
            )
        ],
    )
    overrides = {
        "containerOverrides": [
            {
                "name": "main",
                "command": [PY, "-c", code],
                "environment": [{"name": "RUN", "value": "run"}],
            }
        ]
    }
    task = run(env, td, overrides=overrides)[0]
    stopped = wait_status(env, task["taskArn"], "STOPPED")
    assert stopped["containers"][0]["exitCode"] == 0  # the override replaced `exit 9`
    stream = f"p/main/{task['taskArn'].rsplit('/', 1)[-1]}"
    line = next(m for m in logs_of(env, group, stream, "{") if m.startswith("{"))
    seen = json.loads(line)
    ip = next(
        d["value"]
        for d in stopped["attachments"][0]["details"]
        if d["name"] == "privateIPv4Address"
    )
    assert seen == {
        "TD": "td",
        "RUN": "run",
        "PLAIN": "s3cret",
        "JSONKEY": "hunter2",
        "SSM": "from-ssm",
        "DASK_AWS_TASK_IP": ip,
        "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
    }


def test_missing_log_group_fails_the_start(env: Env) -> None:
    options = {"awslogs-group": f"/missing/{env.cluster}", "awslogs-stream-prefix": "p"}
    td = register(env, [py(SLEEPER, logConfiguration={"logDriver": "awslogs", "options": options})])
    task = wait_status(env, run(env, td)[0]["taskArn"], "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert "log group does not exist" in task["stoppedReason"]
    created = {**options, "awslogs-create-group": "true"}
    td = register(env, [py(SLEEPER, logConfiguration={"logDriver": "awslogs", "options": created})])
    arn = run(env, td)[0]["taskArn"]
    wait_status(env, arn, "RUNNING")
    env.ecs.stop_task(cluster=env.cluster, task=arn)
    wait_status(env, arn, "STOPPED")


def test_stop_timeout_escalates_to_sigkill(env: Env) -> None:
    td = register(env, [py(IGNORES_TERM, stopTimeout=1)])
    arn = run(env, td)[0]["taskArn"]
    wait_status(env, arn, "RUNNING")
    time.sleep(0.5)  # let python install its SIGTERM handler
    started = time.monotonic()
    response = env.ecs.stop_task(cluster=env.cluster, task=arn)["task"]
    assert response["desiredStatus"] == "STOPPED"
    assert response["lastStatus"] != "STOPPED"
    task = wait_status(env, arn, "STOPPED")
    elapsed = time.monotonic() - started
    assert task["containers"][0]["exitCode"] == 137
    assert 0.9 <= elapsed < 5, elapsed


def test_crash_and_spot_interruption(env: Env, local_aws: LocalAws) -> None:
    td = register(env, [py(SLEEPER)])
    crash, spot = (t["taskArn"] for t in run(env, td, count=2))
    wait_status(env, crash, "RUNNING")
    wait_status(env, spot, "RUNNING")
    local_aws.kill_task(crash)
    local_aws.kill_task(spot, spot=True)
    crashed = wait_status(env, crash, "STOPPED")
    assert crashed["stopCode"] == "EssentialContainerExited"
    assert crashed["containers"][0]["exitCode"] == 137
    interrupted = wait_status(env, spot, "STOPPED")
    assert interrupted["stopCode"] == "SpotInterruption"
    assert interrupted["containers"][0]["exitCode"] in (0, 143)
