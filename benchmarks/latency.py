"""Start-up under Fargate's latency: dask-aws beside dask-cloudprovider on `latency="aws"`.

    .venv/bin/python -m benchmarks.latency [--workers 2,10] [--latency aws] [--seed 0]

For each N, on a fresh process-mode `LocalAws(latency="aws")` (each task PROVISIONING then
PENDING for durations drawn as Fargate's, dask_aws/local/latency.py), each implementation's
FargateCluster(n_workers=N) runs in its own process (benchmarks/driver.py; the peer under
benchmarks/.venv-peer): seconds until a Client sees N workers, and the AWS calls made until
then (DescribeTasks, RunTask, all), counted by the server (benchmarks.measure). Both get the
same seed, and the draws go by the order in which the server receives the tasks, so both wait
the same. Two waits are printed from the draws: "scheduler, then workers" (the scheduler's
draw plus the longest worker draw: the least time to Ready for a client that starts the
workers once the scheduler runs, as dask-cloudprovider does) and "workers from the
scheduler's address" (the scheduler's PROVISIONING, then the longer of its PENDING and the
longest worker draw: the least for a client that starts the workers once the scheduler's
interface is attached and has its address, as dask-aws does).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata as metadata
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.measure import RecordedAws
from benchmarks.scale_up import (
    DRIVER,
    IMPLS,
    PEER_PYTHON,
    _git,
    _next_event,
    _table,
    driver_env,
    ensure_peer,
    legacy_entry_points,
    spawn,
)
from benchmarks.signals import exit_on_sigterm
from dask_aws.local import LocalAws


class LatencyAws(RecordedAws):
    """The benchmark's recorded local AWS, in process mode, under a latency profile."""

    def __init__(self, latency: str, seed: int, extra_path: str | None) -> None:
        super().__init__(simulated=False, extra_path=extra_path)
        self.local = LocalAws(port=0, stop_timeout=5.0, latency=latency, latency_seed=seed)

    def __enter__(self) -> LatencyAws:
        super().__enter__()
        return self


@dataclass
class Result:
    impl: str
    workers: int
    error: str | None = None
    ready_seconds: float | None = None
    calls: Counter[str] = field(default_factory=Counter)
    fargate_wait: float | None = None  # scheduler's draw + the longest worker draw
    overlapped_wait: float | None = None  # scheduler's PROVISIONING + max(PENDING, workers)


def _fargate_waits(aws: LatencyAws) -> tuple[float, float] | None:
    """(scheduler then workers, workers from the scheduler's address), from the draws."""
    drawn = {t["taskArn"]: t["latency"] for t in aws.local.tasks() if t.get("latency")}
    ecs = aws.client("ecs")
    scheduler: tuple[float, float] | None = None  # PROVISIONING, PENDING
    workers: list[float] = []
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = [a for a in drawn if a.split("/")[-2] == cluster.rsplit("/", 1)[-1]]
        for chunk in range(0, len(arns), 100):
            for task in ecs.describe_tasks(cluster=cluster, tasks=arns[chunk : chunk + 100])[
                "tasks"
            ]:
                draw = drawn[task["taskArn"]]
                names = " ".join(c.get("name", "") for c in task.get("containers", []))
                if "scheduler" in names:
                    scheduler = (draw["provisioning"], draw["pending"])
                else:
                    workers.append(draw["provisioning"] + draw["pending"])
    if scheduler is None or not workers:
        return None
    provisioning, pending = scheduler
    return provisioning + pending + max(workers), provisioning + max(pending, max(workers))


def run_one(impl: str, workers: int, latency: str, seed: int, timeout: float, shims: str) -> Result:
    result = Result(impl, workers)
    python = sys.executable if impl == "dask-aws" else str(PEER_PYTHON)
    with LatencyAws(latency, seed, shims) as aws:
        # As in benchmarks/scale_up.py: AWS's default account setting, for both.
        aws.client("ecs").put_account_setting(name="taskLongArnFormat", value="enabled")
        env = driver_env(aws.local.env())
        with tempfile.TemporaryFile("w+") as stderr:
            start = aws.mark()
            argv = [python, str(DRIVER), "--impl", impl, "--workers", str(workers)]
            child, lines = spawn([*argv, "--timeout", str(timeout)], env, stderr)
            try:
                ready = _next_event(lines, timeout + 60)
                result.calls = aws.calls(start, aws.mark())
                if ready["event"] != "ready":
                    result.error = f"{ready.get('phase', 'start')}: {ready['error']}"
                else:
                    result.ready_seconds = ready["seconds"]
                    waits = _fargate_waits(aws)
                    if waits is not None:
                        result.fargate_wait, result.overlapped_wait = waits
                child.stdin.write("close\n")
                child.stdin.flush()
                _next_event(lines, 120)
                child.wait(timeout=120)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            if result.error:
                stderr.seek(0)
                tail = stderr.read().strip().splitlines()[-5:]
                result.error += "\n    " + "\n    ".join(tail)
    return result


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def print_table(results: list[Result]) -> None:
    header = ["metric"] + [
        f"N={r.workers} {'dask-aws' if r.impl == 'dask-aws' else 'peer'}" for r in results
    ]

    def op(r: Result, name: str) -> int:
        return sum(v for k, v in r.calls.items() if k.split(":")[1] == name)

    def row(name: str, get: Any) -> list[str]:
        return [name] + ["fail" if r.error and get(r) is None else _fmt(get(r)) for r in results]

    rows = [
        row("seconds until a Client sees N workers", lambda r: r.ready_seconds),
        row("Fargate's wait, scheduler then workers", lambda r: r.fargate_wait),
        row("Fargate's wait, workers from its address", lambda r: r.overlapped_wait),
        row("DescribeTasks calls until then", lambda r: op(r, "DescribeTasks")),
        row("RunTask calls until then", lambda r: op(r, "RunTask")),
        row("all AWS API calls until then", lambda r: sum(r.calls.values())),
    ]
    print(_table(header, rows))
    for r in results:
        if r.error:
            print(f"N={r.workers} {r.impl}: FAILED {r.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--workers", default="2,10", help="N list (default 2,10)")
    parser.add_argument("--latency", default="aws", help="latency profile (default aws)")
    parser.add_argument("--seed", type=int, default=0, help="latency seed (default 0)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per cluster, seconds")
    parser.add_argument("--no-peer", action="store_true", help="skip dask-cloudprovider")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    sizes = [int(x) for x in args.workers.split(",") if x.strip()]

    began = time.monotonic()
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    dask, distributed = (metadata.version(name) for name in ("dask", "distributed"))
    print(f"dask-aws: {_git()}, dask {dask}, distributed {distributed}")
    print(f"local AWS: process mode, latency {args.latency}, seed {args.seed}")
    impls = [IMPLS[0]]
    if not args.no_peer:
        error, versions = ensure_peer(skip_setup=False)
        if error:
            print(f"peer: NOT RUN: {error}")
        else:
            print("peer: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
            impls.append(IMPLS[1])
    print(flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dask-aws-bench-shims-") as shim_dir:
        shims = legacy_entry_points(Path(shim_dir))
        for n in sizes:
            for impl in impls:
                t = time.monotonic()
                print(f"{impl} N={n} ...", end=" ", flush=True)
                one = run_one(impl, n, args.latency, args.seed, args.timeout, shims)
                results.append(one)
                status = "FAILED" if one.error else "ok"
                print(f"{status} ({time.monotonic() - t:.0f}s)", flush=True)
    print(
        "\n== FargateCluster(n_workers=N) until a Client sees N workers, "
        f"latency {args.latency} ==\n(peer = dask-cloudprovider; calls counted by the server)"
    )
    print_table(results)
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
