"""Shutting the local AWS down leaves no process behind; `dask-aws local up` works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from dask_aws.local import LocalAws
from tests.fixtures.polling import wait_for
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
    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in processes if running(p)]


# A daemon: forks, leaves the container's session (setsid), forks again, writes its pid into
# the directory given as argv[1] and sleeps; the container's main process exits at once.
DAEMON = [
    sys.executable,
    "-c",
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close()\n"
    "        time.sleep(120)\n"
    "    os._exit(0)\n"
    "time.sleep(120)\n",
]
# A Python process that runs a child the way a Dask nanny runs its worker: multiprocessing,
# start method spawn (with its resource tracker), under a shell.
SPAWNER = [
    "sh",
    "-c",
    '"$0" -c "$1"; wait',
    sys.executable,
    "import multiprocessing, time\n"
    "process = multiprocessing.get_context('spawn').Process(target=time.sleep, args=(120,))\n"
    "process.start()\n"
    "process.join()\n",
]


def spawned(tree: list[psutil.Process], what: str = "from multiprocessing") -> list[psutil.Process]:
    """The processes of `tree` that multiprocessing started (children, resource trackers)."""
    found = []
    for process in tree:
        try:
            if what in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def gone_within(processes: list[psutil.Process], seconds: float) -> float:
    """Seconds until none of `processes` is alive; fails after `seconds`."""
    started = time.monotonic()
    wait_for(
        lambda: not alive(processes),
        seconds,
        lambda: f"still alive: {[(p.pid, p.cmdline()) for p in alive(processes)]}",
        interval=0.1,
    )
    return time.monotonic() - started


def test_sigkill_of_the_server_leaves_no_task_process(tmp_path: Path) -> None:
    """The reaper (local/reaper.py) stops what a server killed with SIGKILL could not."""
    aws = LocalAws(stop_timeout=1.0).start()
    try:
        env = make_env(aws)
        td = register(
            env,
            [
                {"name": "tree", "image": "x", "command": TREE},
                {"name": "stubborn", "image": "x", "command": STUBBORN, "essential": False},
                {"name": "spawner", "image": "x", "command": SPAWNER, "essential": False},
                {
                    "name": "daemon",
                    "image": "x",
                    "command": [*DAEMON, str(tmp_path)],
                    "essential": False,
                },
            ],
        )
        arns = [t["taskArn"] for t in run(env, td, count=2)]
        for arn in arns:
            wait_status(env, arn, "RUNNING")

        def started() -> list[psutil.Process] | None:
            tree = process_tree([p["pid"] for p in aws.running_processes()])
            daemons = process_tree([int(f.name) for f in tmp_path.iterdir()])
            # tree: sh + 2 sleeps; stubborn; sh + python + tracker + child; daemon's parent
            ready = len(daemons) == 2 and len(spawned(tree)) >= 4 and len(tree) >= 2 * 9
            return tree + daemons if ready else None

        processes = wait_for(started, 30, "every container's processes", interval=0.2)
        assert aws.pid is not None
        server = psutil.Process(aws.pid)
        os.kill(aws.pid, signal.SIGKILL)
        # SIGTERM, then SIGKILL ~1 s later for the stubborn one: well within 5 s.
        took = gone_within(processes, 5.0)
        assert not alive([server])
    finally:
        aws.stop()
    assert took < 5.0


def test_sigkill_of_the_server_group_stops_a_dask_worker_and_its_nanny() -> None:
    """A real `dask worker` (a nanny and its multiprocessing worker) under a shell, with a
    scheduler in the same task: killing the server's whole process group stops them all."""
    aws = LocalAws(stop_timeout=5.0).start()
    try:
        env = make_env(aws)
        worker = "exec dask worker tcp://$DASK_AWS_TASK_IP:8786 --host $DASK_AWS_TASK_IP --nanny"
        td = register(
            env,
            [
                {"name": "scheduler", "image": "x", "command": ["dask", "scheduler"]},
                {"name": "worker", "image": "x", "command": ["sh", "-c", worker]},
            ],
        )
        arn = run(env, td)[0]["taskArn"]
        wait_status(env, arn, "RUNNING")

        def worker_started() -> list[psutil.Process] | None:
            tree = process_tree([p["pid"] for p in aws.running_processes()])
            return tree if spawned(tree, "spawn_main") else None

        tree = wait_for(worker_started, 60, "the nanny's worker process", interval=0.5)
        groups = {os.getpgid(p.pid) for p in tree}
        assert len(groups) == 2  # the worker stays in its container's group
        assert aws.pid is not None
        os.killpg(aws.pid, signal.SIGKILL)
        gone_within(tree, 10.0)
    finally:
        aws.stop()


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


def test_stop_removes_the_log_it_named_and_keeps_one_the_caller_named(tmp_path: Path) -> None:
    own = LocalAws(simulated=True).start()
    assert own.log_path is not None and own.log_path.exists()
    made = own.log_path
    own.stop()
    assert not made.exists()

    named = tmp_path / "local-aws.log"
    with LocalAws(simulated=True, log_path=named):
        pass
    assert named.read_text()  # the server's start-up lines, still there to read
