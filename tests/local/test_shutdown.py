"""Shutting the local AWS down leaves no process behind; `dask-aws local up` works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from dask_aws.local import LocalAws
from tests.local.helpers import make_env, register, run, wait_status

pytestmark = pytest.mark.slow

TREE = ["sh", "-c", "sleep 120 & sleep 120 & wait"]
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)",
]


def process_tree(pids: list[int]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            found += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return found


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_stop_kills_every_process_group() -> None:
    aws = LocalAws(stop_timeout=1.0).start()
    try:
        env = make_env(aws)
        td = register(
            env,
            [
                {"name": "tree", "image": "x", "command": TREE},
                {"name": "stubborn", "image": "x", "command": STUBBORN, "essential": False},
            ],
        )
        arns = [t["taskArn"] for t in run(env, td, count=2)]
        for arn in arns:
            wait_status(env, arn, "RUNNING")
        time.sleep(0.3)
        tree = process_tree([p["pid"] for p in aws.running_processes()])
        assert len(tree) >= 2 * (1 + 2 + 1)
        server = psutil.Process(aws.pid)
    finally:
        started = time.monotonic()
        aws.stop()
    assert time.monotonic() - started < 10
    assert not alive(tree)
    assert not alive([server])


def test_local_up_command_serves_and_cleans_up() -> None:
    command = [os.path.join(os.path.dirname(sys.executable), "dask-aws")]
    if not os.path.exists(command[0]):
        command = [sys.executable, "-m", "dask_aws.cli"]
    process = subprocess.Popen(
        [*command, "local", "up", "--port", "0", "--stop-timeout", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        lines = []
        while "AWS_DEFAULT_REGION" not in exports:
            line = process.stdout.readline()
            assert line, f"local up exited: {lines}"
            lines.append(line)
            if line.startswith("export "):
                key, _, value = line[len("export ") :].strip().partition("=")
                exports[key] = value
        assert exports["AWS_ACCESS_KEY_ID"] == "testing"
        assert exports["AWS_SECRET_ACCESS_KEY"] == "testing"
        endpoint = exports["AWS_ENDPOINT_URL"]
        assert endpoint.startswith("http://127.0.0.1:")
        aws = LocalAws()
        aws.port = int(endpoint.rsplit(":", 1)[1])
        env = make_env(aws)
        td = register(env, [{"name": "tree", "image": "x", "command": TREE}])
        arn = run(env, td)[0]["taskArn"]
        wait_status(env, arn, "RUNNING")
        time.sleep(0.3)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{endpoint}/_local/processes", timeout=10) as response:
            pids = [p["pid"] for p in json.loads(response.read())["processes"]]
        tree = process_tree(pids)
        assert len(tree) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "stopped" in output
    assert not alive(tree)
