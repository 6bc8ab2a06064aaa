"""scheduler_api.demand against a real `dask scheduler` that cannot import dask_aws, as in
the scheduler image: the probe must travel as source, and the reply as counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from distributed import Client

from dask_aws.engine import scheduler_api
from dask_aws.engine.demand import UNRESTRICTED, Demand, Group, split
from dask_aws.engine.scheduler_api import DemandUnavailable, Endpoint
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.slow
GPU = frozenset({("GPU", 1.0)})

# This venv finds dask_aws through a .pth file whatever the cwd; the scheduler image has
# none. Hide it: drop its directory from sys.path and make `import dask_aws` fail.
WITHOUT_DASK_AWS = """
import sys
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/operator")]
sys.modules["dask_aws"] = None
from distributed.cli.{module} import main
main()
"""


def _start(tmp: Path, module: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = WITHOUT_DASK_AWS.format(module=module)
    with open(tmp / f"{module}.log", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=tmp,
            env={**clean, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def _scheduler(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Endpoint]:
    """A `dask scheduler` on 127.0.0.1 (plain tcp), stopped afterwards."""
    tmp.mkdir(parents=True, exist_ok=True)
    found = tmp / "scheduler.json"
    args = ["--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(found)]
    process = _start(tmp, "dask_scheduler", args, env or {})
    try:
        wait_for(lambda: found.exists() and found.stat().st_size > 0, 60, "scheduler file", 0.1)
        yield Endpoint(json.loads(found.read_text())["address"])
    finally:
        _stop(process)


def _check_hidden(tmp: Path) -> None:
    log = (tmp / "dask_scheduler.log").read_text()
    assert "Traceback" not in log, log


def test_demand_counts_waiting_work_by_restriction(tmp_path: Path) -> None:
    with ExitStack() as stack:
        base = stack.enter_context(_scheduler(tmp_path / "s"))
        worker = _start(
            tmp_path / "s",
            "dask_worker",
            [base.address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"],
            {},
        )
        stack.callback(_stop, worker)
        client = stack.enter_context(Client(base.address, timeout=30))  # type: ignore[no-untyped-call]
        client.wait_for_workers(1, timeout=60)

        gpu = [client.submit(time.sleep, 60, resources={"GPU": 1}, pure=False) for _ in range(3)]
        cpu = [client.submit(time.sleep, 60, pure=False) for _ in range(5)]
        stack.callback(client.cancel, gpu + cpu)

        def settled() -> Demand | None:
            d = scheduler_api.demand(base)
            cpu_tasks = d.waiting.get(UNRESTRICTED, 0) + d.running.get(UNRESTRICTED, 0)
            return d if d.waiting.get(GPU) == 3 and cpu_tasks == 5 else None

        demand = wait_for(settled, 30, "3 GPU tasks waiting and 5 plain ones", 0.2)
        assert GPU not in demand.running  # no worker offers GPU: all unrunnable
        assert demand.running.get(UNRESTRICTED, 0) >= 1  # the one thread is busy
        assert demand.target >= 1

        # What the controller does with it: the GPU group grows, the CPU group keeps the rest.
        groups = [Group("cpu", 1, 10), Group("gpu", 0, 3, resources={"GPU": 1.0})]
        targets = split(groups, demand).targets
        assert targets["gpu"] == min(3, demand.target) and targets["cpu"] >= 1
    _check_hidden(tmp_path / "s")


def test_a_scheduler_that_blocks_run_function_leaves_the_adaptive_target(tmp_path: Path) -> None:
    blocked = {"DASK_DISTRIBUTED__SCHEDULER__BLOCKED_HANDLERS": '["run_function"]'}
    with _scheduler(tmp_path, blocked) as base:
        with pytest.raises(DemandUnavailable):
            scheduler_api.demand(base)
        assert scheduler_api.adaptive_target(base) == 0  # the fallback still answers
