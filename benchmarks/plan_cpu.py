"""plan() CPU benchmark: the engine's pure planning step at thousands of workers.

    .venv/bin/python -m benchmarks.plan_cpu [--workers 1000,10000] [--repeat 7]

`plan()` (operator/dask_aws/engine/plan.py) runs on every reconcile round, for the operator
once per cluster per resync and for FargateCluster every 2-30 s; it must stay linear in the
number of tasks. Each shape below is a hand-made observation (the builders of
tests/fixtures/observations.py: `observed`, `task`, `SCHED`, `NOW`), so no AWS and no
processes are involved. For each shape and size the script checks what plan() decided (a
fast but wrong plan is no result), then reports CPU seconds per call (`time.process_time`,
the best of --repeat calls, so other load on a shared machine inflates it least) beside the
target, and how much the time grew from the smallest to the largest size (x10 workers: about
x10 when linear, about x100 when quadratic).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from tests.fixtures.observations import NOW, SCHED, observed, task

from benchmarks.scale_up import _fmt, _git, _sizes, _table
from dask_aws.engine.observe import Observed
from dask_aws.engine.plan import Plan, Rollout, plan

TARGET_SECONDS = 0.5  # per plan() call at TARGET_WORKERS
TARGET_WORKERS = 10_000
OLD_DEFINITION = "arn:td/w:0"  # the worker definition before a spec change
# Workers are `task(n, ...)`: its ip, f"127.1.0.{n}", is no real address past n=255 but is
# unique, which is all plan() needs of it.


@dataclass(frozen=True)
class Case:
    """One call of plan(): its arguments and a check of what it decided."""

    observed: Observed
    desired: int
    check: Callable[[Plan], bool]
    retire_first: frozenset[str] = frozenset()
    connected: frozenset[str] | None = None
    rollout: Rollout | None = None

    def run(self) -> Plan:
        return plan(
            self.observed,
            self.desired,
            NOW,
            retire_first=self.retire_first,
            rollout=self.rollout,
            connected=self.connected,
        )


def converged(n: int) -> Case:
    """n running workers, n wanted: nothing to do (the steady state of every round)."""
    workers = [task(i, age=30) for i in range(1, n + 1)]
    return Case(
        observed([SCHED, *workers]),
        n,
        lambda p: not p.mutates and len(p.kept_workers) == n,
    )


def scale_down_by_half(n: int) -> Case:
    """n running workers, n/2 wanted; adapt named a quarter of them to go first."""
    workers = [task(i, age=30 + i % 7) for i in range(1, n + 1)]
    named = frozenset(w.ip for w in workers[: n // 4] if w.ip)
    half = n // 2

    def check(p: Plan) -> bool:
        gone = {t.ip for t in p.retire}
        return len(p.retire) == n - half and named <= gone and len(p.kept_workers) == half

    return Case(observed([SCHED, *workers]), half, check, retire_first=named)


def rolling_all(n: int) -> Case:
    """All n workers run an older definition and have joined the scheduler; n wanted:
    replacements start within the surge (25 %), nothing is retired yet."""
    workers = [
        replace(task(i, age=30), task_definition_arn=OLD_DEFINITION) for i in range(1, n + 1)
    ]
    joined = frozenset(w.ip for w in workers if w.ip)
    surge = Rollout.default(n).max_surge

    def check(p: Plan) -> bool:
        return p.rolling and p.retire == [] and len(p.outdated) == n and p.run_workers == surge

    return Case(observed([SCHED, *workers]), n, check, connected=joined)


def rolling_most_replaced(n: int) -> Case:
    """Mid-roll: 3n/4 workers already run the new definition and have joined, n/2 outdated
    ones still serve: the surplus (n/4, oldest first) is retired (Dask moves their data),
    the other n/4 keep serving while n/4 more replacements start."""
    fresh_count, old_count, quarter = 3 * n // 4, n // 2, n // 4
    fresh = [task(i, age=1) for i in range(1, fresh_count + 1)]
    old = [
        replace(task(i, age=30 + i % 5), task_definition_arn=OLD_DEFINITION)
        for i in range(fresh_count + 1, fresh_count + old_count + 1)
    ]
    joined = frozenset(w.ip for w in [*fresh, *old] if w.ip)

    def check(p: Plan) -> bool:
        return (
            p.rolling
            and len(p.retire) == quarter
            and len(p.outdated) == old_count - quarter
            and p.run_workers == quarter
        )

    return Case(observed([SCHED, *fresh, *old]), n, check, connected=joined)


def many_stopped(n: int) -> Case:
    """n/2 workers running and n wanted, with n crashed workers (after a healthy run, so no
    crash loop) and n stopped by an earlier scale-down still listed: n/2 replacements, and
    the crashed tasks they replace are looked up among the stopped ones."""
    half = n // 2
    running = [task(i, age=30) for i in range(1, half + 1)]
    crashed = [
        task(i, status="STOPPED", age=30, stop_code="EssentialContainerExited")
        for i in range(half + 1, half + n + 1)
    ]
    scaled_away = [
        task(i, status="STOPPED", age=40, stop_code="UserInitiated")
        for i in range(half + n + 1, half + 2 * n + 1)
    ]

    def check(p: Plan) -> bool:
        return (
            p.run_workers == n - half
            and len(p.replacing_workers) == n - half
            and p.crash_loop is None
            and p.backoff is None
        )

    return Case(observed([SCHED, *running, *crashed, *scaled_away]), n, check)


def scheduler_lost(n: int) -> Case:
    """The scheduler task stopped under n workers: a new scheduler, and every worker is
    stopped (they follow their scheduler)."""
    lost = replace(
        SCHED, last_status="STOPPED", desired_status="STOPPED", stop_code="EssentialContainerExited"
    )
    workers = [task(i, age=30) for i in range(1, n + 1)]

    def check(p: Plan) -> bool:
        return p.run_scheduler and p.replacing_scheduler == lost and len(p.stop) == n

    return Case(observed([lost, *workers]), n, check)


SHAPES: dict[str, Callable[[int], Case]] = {
    "converged": converged,
    "scaling down by half": scale_down_by_half,
    "rolling all onto a new definition": rolling_all,
    "rolling, 3/4 replaced": rolling_most_replaced,
    "many stopped tasks (n/2 live, 2n stopped)": many_stopped,
    "scheduler lost (every worker stopped)": scheduler_lost,
}


def cpu_seconds(case: Case, repeat: int) -> float:
    """The best CPU time of `repeat` plan() calls on the same observation. The cyclic
    garbage collector is off while timing, as in timeit: its passes are triggered by the
    observation's tens of thousands of objects, not by plan()."""
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.process_time()
            case.run()
            best = min(best, time.process_time() - started)
    finally:
        if enabled:
            gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_cpu", description=__doc__)
    parser.add_argument("--workers", type=_sizes, default=[1_000, TARGET_WORKERS])
    parser.add_argument("--repeat", type=int, default=7, help="plan() calls per shape and size")
    args = parser.parse_args(argv)
    sizes: list[int] = sorted(args.workers)

    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"dask-aws: {_git()}")
    print(
        f"CPU seconds per plan() call, best of {args.repeat}; "
        f"target < {TARGET_SECONDS} s at {TARGET_WORKERS:,} workers"
    )
    print()

    largest = sizes[-1]
    header = ["shape", f"tasks at N={largest:,}", *(f"N={n:,}" for n in sizes)]
    if len(sizes) > 1:
        header.append(f"time x (workers x{largest // sizes[0]})")
    header += ["target", "verdict"]
    rows: list[list[str]] = []
    failures: list[str] = []
    for name, build in SHAPES.items():
        seconds: list[float] = []
        tasks = 0
        for n in sizes:
            case = build(n)
            if not case.check(case.run()):
                failures.append(f"{name}, N={n:,}: plan() decided something else")
            seconds.append(cpu_seconds(case, args.repeat))
            tasks = len(case.observed.tasks)
        row = [name, f"{tasks:,}", *(_fmt(s, 4) for s in seconds)]
        if len(sizes) > 1:
            row.append(_fmt(seconds[-1] / seconds[0] if seconds[0] else None, 1))
        at_target = [s for n, s in zip(sizes, seconds, strict=True) if n == TARGET_WORKERS]
        if at_target:
            ok = at_target[0] < TARGET_SECONDS
            row += [f"< {TARGET_SECONDS}", "ok" if ok else "TOO SLOW"]
            if not ok:
                failures.append(f"{name}: {at_target[0]:.3f} s at N={TARGET_WORKERS:,}")
        else:
            row += [f"< {TARGET_SECONDS} at {TARGET_WORKERS:,}", "-"]
        rows.append(row)
    print(_table(header, rows))
    print("\n(time x: about the workers factor when linear, its square when quadratic)")
    for line in failures:
        print(f"FAILED: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
