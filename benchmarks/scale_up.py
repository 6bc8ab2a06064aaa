"""Scale-up benchmark: dask-aws beside dask-cloudprovider, both on the local AWS.

    .venv/bin/python -m benchmarks.scale_up [--workers 2,10] [--repeat 3] [--sim-workers 100,500]

Part 1, process mode (real `dask scheduler`/`dask worker` processes on 127.x addresses): for
each N, on a fresh `LocalAws`, each implementation's FargateCluster(n_workers=N) runs in its
own process (benchmarks/driver.py; the peer under benchmarks/.venv-peer): time until a Client
sees N workers, AWS API calls by operation (counted by the server, see benchmarks.measure),
time of close(), the calls from close() to the process's exit, and what is left on the
account compared with a snapshot taken before. Beside them, the floor (benchmarks/floor.py):
the same `dask scheduler`/`dask worker` commands started directly, with no AWS (seconds,
measured), and the AWS calls that are necessary once (computed). The run ends with the
targets of issue 14, each with dask-aws, the peer, the floor and PASS/MISS.

Part 2, simulated mode (no processes), dask-aws only: the engine's reconcile() driven as the
front ends drive it (again after `requeue_after`) to Ready at N=100 and N=500, then delete();
the peer's documented pattern is printed beside it, not measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.floor import CallFloor, aws_call_floor
from benchmarks.floor import describe as describe_floor
from benchmarks.measure import KINDS, RecordedAws, snapshot, stopped_reasons
from benchmarks.signals import exit_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
DRIVER = HERE / "driver.py"
PEER_PYTHON = HERE / ".venv-peer" / "bin" / "python"
PEER_SETUP = HERE / "peer_setup.sh"
IMPLS = ("dask-aws", "dask-cloudprovider")
FLOOR = "floor"
COLUMNS = (*IMPLS, FLOOR)
# The targets (issue 14).
TARGET_CALLS_TOTAL = (10, 50)  # N, at most this many calls from the constructor to exit
TARGET_CALLS_READY = (2, 30)  # N, at most this many calls until the Client sees N workers
TARGET_TIME = (10, 0.6, 1.3)  # N, at most x peer's seconds, at most x the floor's seconds
EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.*)$")


# -- the peer's environment ---------------------------------------------------------------------
def ensure_peer(skip_setup: bool) -> tuple[str | None, dict[str, str]]:
    """(error or None, versions) of benchmarks/.venv-peer, creating it when it is missing."""
    if not PEER_PYTHON.exists() and not skip_setup:
        print("creating benchmarks/.venv-peer (benchmarks/peer_setup.sh) ...", flush=True)
        done = subprocess.run(
            ["bash", str(PEER_SETUP)], capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            return "peer_setup.sh failed:\n" + "\n".join(tail), {}
    if not PEER_PYTHON.exists():
        return f"{PEER_PYTHON} does not exist (run benchmarks/peer_setup.sh)", {}
    probe = (
        "import json, importlib.metadata as m, dask_cloudprovider.aws\n"
        "names = ('dask-cloudprovider', 'dask', 'distributed', 'aiobotocore', 'botocore')\n"
        "print(json.dumps({n: m.version(n) for n in names}))"
    )
    done = subprocess.run([str(PEER_PYTHON), "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return "the peer venv cannot import dask_cloudprovider.aws:\n" + done.stderr[-2000:], {}
    versions: dict[str, str] = json.loads(done.stdout)
    return None, versions


def legacy_entry_points(directory: Path) -> str:
    """`dask-scheduler` and `dask-worker` shims in `directory` (see the README: the peer's task
    definitions run these commands, which distributed >= 2025 no longer installs)."""
    dask = Path(sys.executable).parent / "dask"
    for role in ("scheduler", "worker"):
        shim = directory / f"dask-{role}"
        shim.write_text(f'#!/bin/sh\nexec "{dask}" {role} "$@"\n')
        shim.chmod(0o755)
    return str(directory)


# -- part 1: one cluster in a child process ------------------------------------------------------
@dataclass
class Run:
    impl: str
    workers: int
    error: str | None = None
    ready_seconds: float | None = None
    seen_workers: int | None = None
    close_seconds: float | None = None
    exit_seconds: float | None = None
    start_calls: Counter[str] = field(default_factory=Counter)
    idle_calls: Counter[str] = field(default_factory=Counter)
    close_calls: Counter[str] = field(default_factory=Counter)
    stopped_reasons: Counter[str] = field(default_factory=Counter)
    left: dict[str, list[str]] = field(default_factory=dict)
    processes_left: int | None = None
    exceptions: Counter[str] = field(default_factory=Counter)
    # With --repeat: (seconds until ready, AWS calls constructor to exit) of every run; the
    # Run's other fields are the first run's, its ready_seconds the median.
    repeats: list[tuple[float | None, int]] = field(default_factory=list)


def _reader(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def driver_env(local_env: dict[str, str]) -> dict[str, str]:
    """A child's environment: this one, pointed at the local AWS, without the caller's
    own AWS profile or session (the local AWS's testing keys only)."""
    env = {**os.environ, **local_env, "PYTHONUNBUFFERED": "1", "DASK_AWS_LOOPBACK_ONLY": "1"}
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(key, None)
    return env


def spawn(
    argv: list[str], env: dict[str, str], stderr: IO[str]
) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    """A child that answers on stdout (BENCH lines), and the queue its lines arrive in."""
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(child.stdout, lines), daemon=True).start()
    return child, lines


def _next_event(lines: queue.Queue[str | None], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"event": "error", "error": f"no answer from the driver within {timeout:.0f}s"}
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            return {"event": "error", "error": "the driver exited without an answer"}
        if line.startswith("BENCH "):
            event: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return event


def _exceptions(text: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in text.splitlines():
        match = EXCEPTION_LINE.match(line.strip())
        if match:
            found[f"{match.group(1)}: {match.group(2)[:160]}"] += 1
    return found


def run_cluster(
    impl: str,
    workers: int,
    timeout: float,
    *,
    shims: str | None,
    long_arn: bool = True,
    settle: float = 3.0,
) -> Run:
    run = Run(impl, workers)
    python = sys.executable if impl == "dask-aws" else str(PEER_PYTHON)
    with RecordedAws(simulated=False, extra_path=shims) as aws:
        # Real AWS reports taskLongArnFormat "enabled" for every account (the default since
        # 2021); moto lists only settings put explicitly, and dask-cloudprovider unpacks exactly
        # one. Same account state for both implementations.
        if long_arn:
            aws.client("ecs").put_account_setting(name="taskLongArnFormat", value="enabled")
        before = snapshot(aws)
        env = driver_env(aws.local.env())
        with tempfile.TemporaryFile("w+") as stderr:
            start_mark = aws.mark()
            argv = [python, str(DRIVER), "--impl", impl, "--workers", str(workers)]
            child, lines = spawn([*argv, "--timeout", str(timeout)], env, stderr)
            try:
                ready = _next_event(lines, timeout + 60)
                ready_mark = aws.mark()
                run.start_calls = aws.calls(start_mark, ready_mark)
                if ready["event"] != "ready":
                    run.error = f"{ready.get('phase', 'start')}: {ready['error']}"
                else:
                    run.ready_seconds = ready["seconds"]
                    run.seen_workers = ready["workers"]
                    time.sleep(settle)  # what the cluster does on its own while idle
                    settle_mark = aws.mark()
                    run.idle_calls = aws.calls(ready_mark, settle_mark)
                    closing = time.monotonic()
                    child.stdin.write("close\n")
                    child.stdin.flush()
                    closed = _next_event(lines, timeout + 60)
                    if closed["event"] == "closed":
                        run.close_seconds = closed["seconds"]
                    else:
                        run.error = f"close: {closed['error']}"
                    child.wait(timeout=120)
                    run.exit_seconds = time.monotonic() - closing
                    run.close_calls = aws.calls(settle_mark)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            stderr.seek(0)
            run.exceptions = _exceptions(stderr.read())
        run.left = snapshot(aws).minus(before)
        if run.error:
            run.stopped_reasons = stopped_reasons(aws)
        run.processes_left = len(aws.local.running_processes())
    return run


def run_floor(workers: int, timeout: float, calls: CallFloor) -> Run:
    """The floor (benchmarks/floor.py): the same dask commands as plain processes, no AWS;
    its AWS calls are the computed floor, not measured."""
    run = Run(FLOOR, workers, start_calls=calls.start, close_calls=calls.close)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile("w+") as stderr:
        argv = [sys.executable, "-m", "benchmarks.floor", "--workers", str(workers)]
        child, lines = spawn([*argv, "--timeout", str(timeout)], env, stderr)
        try:
            ready = _next_event(lines, timeout + 60)
            if ready["event"] != "ready":
                run.error = f"{ready.get('phase', 'start')}: {ready['error']}"
            else:
                run.ready_seconds = ready["seconds"]
                run.seen_workers = ready["workers"]
                closing = time.monotonic()
                child.stdin.write("close\n")
                child.stdin.flush()
                closed = _next_event(lines, timeout + 60)
                if closed["event"] == "closed":
                    run.close_seconds = closed["seconds"]
                else:
                    run.error = f"close: {closed['error']}"
                child.wait(timeout=120)
                run.exit_seconds = time.monotonic() - closing
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        stderr.seek(0)
        run.exceptions = _exceptions(stderr.read())
    return run


# -- part 2: the engine at scale, simulated ------------------------------------------------------
@dataclass
class SimRun:
    workers: int
    error: str | None = None
    ready_seconds: float | None = None
    steps: int = 0
    start_calls: Counter[str] = field(default_factory=Counter)
    client_side_agrees: bool | None = None
    delete_seconds: float | None = None
    delete_calls: Counter[str] = field(default_factory=Counter)
    left: list[str] = field(default_factory=list)


def run_simulated(workers: int, timeout: float) -> SimRun:
    from tests.fixtures.aws_clients import session_for
    from tests.fixtures.engine import target
    from tests.fixtures.leaks import tagged_resources

    from dask_aws.aws.clients import Aws
    from dask_aws.engine.delete import delete
    from dask_aws.engine.memory import Memory
    from dask_aws.engine.reconcile import reconcile

    sim = SimRun(workers)
    with RecordedAws(simulated=True) as aws:
        url = aws.local.endpoint_url
        session = session_for()
        client_side: Counter[str] = Counter()

        def count(model: Any, **_: Any) -> None:
            client_side[f"{model.service_model.signing_name}:{model.name}"] += 1

        session.events.register("before-call", count)
        engine_aws = Aws(session=session, region="us-east-1", endpoint_url=url)
        tgt = target(
            name=f"bench{workers}", workers={"replicas": workers, "cpu": 512, "memory": 1024}
        )
        start_mark = aws.mark()
        started = time.monotonic()
        # As FargateCluster drives it: a memory for a new owner, again after requeue_after.
        memory = Memory(new_owner=True)
        while True:
            result = reconcile(engine_aws, tgt, memory=memory)
            sim.steps += 1
            if result.error is not None:
                sim.error = result.error.message
                break
            if result.ready:
                sim.ready_seconds = time.monotonic() - started
                break
            if time.monotonic() - started > timeout:
                sim.error = f"not Ready after {timeout:.0f}s"
                break
            time.sleep(result.requeue_after or 2.0)
        ready_mark = aws.mark()
        sim.start_calls = aws.calls(start_mark, ready_mark)
        sim.client_side_agrees = client_side == sim.start_calls
        started = time.monotonic()
        # As FargateCluster's close(): what the last good step recorded, nothing looked for.
        known = result.status.aws.created
        while True:
            outcome = delete(engine_aws, tgt, known, discover=False)
            if outcome.done or time.monotonic() - started > timeout:
                break
            time.sleep(2.0)
        sim.delete_seconds = time.monotonic() - started
        if not outcome.done:
            sim.error = f"delete: {outcome.error.message if outcome.error else 'not done'}"
        sim.delete_calls = aws.calls(ready_mark)
        sim.left = tagged_resources(engine_aws, tgt.owner.uid)
    return sim


# -- printing ------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _short(impl: str) -> str:
    return {"dask-aws": "dask-aws", "dask-cloudprovider": "peer"}.get(impl, impl)


def total_calls(r: Run) -> int:
    """Every AWS call from the constructor until the process exited."""
    return sum((r.start_calls + r.idle_calls + r.close_calls).values())


def print_process_table(runs: dict[tuple[int, str], Run], sizes: list[int]) -> None:
    header = ["metric"] + [f"N={n} {_short(i)}" for n in sizes for i in COLUMNS]
    cols = [runs.get((n, i)) for n in sizes for i in COLUMNS]

    def row(name: str, get: Any, floor: bool = False) -> list[str]:
        """`floor`: the row applies to the floor column (its calls are computed)."""
        return [name] + [
            (
                "n/a"
                if r is None
                else "-"
                if r.impl == FLOOR and not floor
                else "fail"
                if r.error and get(r) is None
                else _fmt(get(r))
            )
            for r in cols
        ]

    def ops(r: Run, names: tuple[str, ...], phase: str) -> int:
        calls = r.start_calls if phase == "start" else r.close_calls
        return sum(v for k, v in calls.items() if k.split(":")[1] in names)

    rows = [
        row("seconds until a Client sees N workers", lambda r: r.ready_seconds, True),
        row("workers the Client saw", lambda r: r.seen_workers, True),
        row("AWS API calls until then", lambda r: sum(r.start_calls.values()), True),
        row("  RunTask", lambda r: ops(r, ("RunTask",), "start"), True),
        row("  DescribeTasks", lambda r: ops(r, ("DescribeTasks",), "start"), True),
        row("AWS API calls in the idle seconds after", lambda r: sum(r.idle_calls.values()), True),
        row("seconds in close()", lambda r: r.close_seconds, True),
        row("seconds from close() to process exit", lambda r: r.exit_seconds, True),
        row("AWS API calls from close() to exit", lambda r: sum(r.close_calls.values()), True),
        row("  StopTask", lambda r: ops(r, ("StopTask",), "close"), True),
        row("  DescribeTasks", lambda r: ops(r, ("DescribeTasks",), "close"), True),
        row("AWS API calls, constructor to exit", total_calls, True),
    ]
    for kind in KINDS:
        rows.append(row(f"left after exit: {kind}", lambda r, k=kind: len(r.left.get(k, []))))
    rows.append(row("container processes alive at exit", lambda r: r.processes_left))
    rows.append(row("exception lines on stderr", lambda r: sum(r.exceptions.values()), True))
    print(_table(header, rows))
    print(
        "(floor: seconds measured with the same dask commands started as plain processes, no"
        "\nAWS; its AWS calls are computed, not measured: see the floor section below)"
    )

    if len(sizes) >= 2:
        low, high = sizes[0], sizes[-1]
        print(
            f"\nAPI calls per added worker, until ready plus the idle seconds after, "
            f"(calls(N={high}) - calls(N={low})) / {high - low}:"
        )
        for impl in COLUMNS:
            a, b = runs.get((low, impl)), runs.get((high, impl))
            if a and b and not a.error and not b.error:
                up = [sum((r.start_calls + r.idle_calls).values()) for r in (a, b)]
                print(f"  {impl}: {(up[1] - up[0]) / (high - low):.2f} ({up[0]} -> {up[1]})")

    operations = sorted({op for r in cols if r for op in r.start_calls | r.close_calls})
    print(
        "\nAWS API calls by operation, until ready / from close() to exit (calls in the idle "
        "seconds\nare listed under 'above the floor'):"
    )
    op_rows = [
        [op]
        + [f"{r.start_calls.get(op, 0)}/{r.close_calls.get(op, 0)}" if r else "n/a" for r in cols]
        for op in operations
    ]
    print(_table(["operation", *header[1:]], op_rows))

    notes = []
    for r in cols:
        if r is None:
            continue
        label = f"N={r.workers} {r.impl}"
        if r.impl == FLOOR and r.error:
            notes.append(f"{label}: FAILED {r.error}")
            continue
        if r.error:
            notes.append(f"{label}: FAILED {r.error}")
        for kind, items in r.left.items():
            if items:
                notes.append(f"{label}: left {kind}: {', '.join(items)}")
        for text, count in r.exceptions.most_common():
            notes.append(f"{label}: stderr {count}x {text}")
    if notes:
        print("\nDetails:")
        for note in notes:
            print("  " + note)


def _ok(r: Run | None) -> bool:
    return r is not None and not r.error


def print_floor(runs: dict[tuple[int, str], Run], sizes: list[int]) -> None:
    """How the floors are made, and every call of each implementation above the AWS-call floor,
    per phase."""
    print("\n== The floor ==")
    print("seconds: " + describe_floor(sizes[0] if sizes else 1))
    print(
        "  started by benchmarks/floor.py from its first Popen until Client.wait_for_workers(N)"
        "\n  returned (all processes at once, the workers retrying until the scheduler listens)."
    )
    print(
        "AWS calls (computed from dask-aws's resource table for this FargateCluster, each call"
        "\nthat is necessary once; create calls until ready, delete calls in close):"
    )
    for n in sizes:
        floor = runs.get((n, FLOOR))
        if floor is None:
            continue
        start, close = sum(floor.start_calls.values()), sum(floor.close_calls.values())
        print(f"  N={n}: {start} until ready + {close} in close = {start + close}")
    calls = aws_call_floor(sizes[-1] if sizes else 1)
    for why in calls.why:
        print(f"  - {why}")

    print("\n== AWS calls above the floor, by phase (measured minus floor; '-' below it) ==")
    for n in sizes:
        floor = runs.get((n, FLOOR))
        if floor is None:
            continue
        for impl in IMPLS[:1]:  # the floor counts dask-aws's resources; the peer makes others
            r = runs.get((n, impl))
            if not _ok(r):
                continue
            assert r is not None
            total = total_calls(r) - total_calls(floor)
            print(f"N={n} {impl}: {total_calls(r)} calls, floor {total_calls(floor)}: {total:+d}")
            for phase, measured, least in (
                ("until ready", r.start_calls, floor.start_calls),
                ("idle", r.idle_calls, Counter()),
                ("close to exit", r.close_calls, floor.close_calls),
            ):
                extra = {op: measured.get(op, 0) - least.get(op, 0) for op in measured | least}
                above = sorted((op for op, d in extra.items() if d > 0), key=lambda o: -extra[o])
                below = sorted(op for op, d in extra.items() if d < 0)
                diff = sum(measured.values()) - sum(least.values())
                parts = [f"{op.split(':')[1]} +{extra[op]}" for op in above]
                parts += [f"{op.split(':')[1]} {extra[op]}" for op in below]
                print(f"  {phase} ({diff:+d}): {', '.join(parts) if parts else 'none'}")


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "PASS" if ok else "MISS"


def print_targets(runs: dict[tuple[int, str], Run], repeat: int) -> list[bool]:
    """The issue's targets, side by side; the verdicts of those that could be judged."""
    rows: list[list[str]] = []
    verdicts: list[bool] = []

    def add(name: str, target: str, values: list[Any], ok: bool | None) -> None:
        rows.append([name, target, *(_fmt(v, 2) for v in values), _verdict(ok)])
        if ok is not None:
            verdicts.append(ok)

    def get(n: int, impl: str) -> Run | None:
        r = runs.get((n, impl))
        return r if _ok(r) else None

    n, most = TARGET_CALLS_TOTAL
    ours, peer, floor = (get(n, c) for c in COLUMNS)
    values = [total_calls(r) if r else None for r in (ours, peer, floor)]
    add(
        f"N={n} AWS calls, constructor to exit",
        f"<= {most}",
        values,
        None if values[0] is None else values[0] <= most,
    )
    n, most = TARGET_CALLS_READY
    ours, peer, floor = (get(n, c) for c in COLUMNS)
    values = [sum(r.start_calls.values()) if r else None for r in (ours, peer, floor)]
    add(
        f"N={n} AWS calls until the Client sees N workers",
        f"<= {most}",
        values,
        None if values[0] is None else values[0] <= most,
    )
    n, peer_x, floor_x = TARGET_TIME
    ours, peer, floor = (get(n, c) for c in COLUMNS)
    seconds = [r.ready_seconds if r else None for r in (ours, peer, floor)]
    for label, x, base in (
        ("dask-cloudprovider", peer_x, seconds[1]),
        ("the floor", floor_x, seconds[2]),
    ):
        limit = x * base if base is not None else None
        ok = None if seconds[0] is None or limit is None else seconds[0] <= limit
        ratio = f", is {seconds[0] / base:.3f}x" if seconds[0] is not None and base else ""
        add(
            f"N={n} seconds until the Client sees N workers, vs {label}",
            f"<= {x}x = {_fmt(limit, 2)}{ratio}",
            seconds,
            ok,
        )
    print("\n== Targets (issue 14) ==")
    spread = []
    for (n, impl), r in sorted(runs.items()):
        if len(r.repeats) > 1:
            secs = ", ".join(_fmt(sec, 2) for sec, _ in r.repeats)
            calls = sorted({c for _, c in r.repeats})
            spread.append(f"  N={n} {impl}: seconds {secs}; calls constructor to exit {calls}")
    if spread:
        print("every run (seconds until the Client sees N workers are their median):")
        print("\n".join(spread))
    print(_table(["target", "target value", "dask-aws", "peer", "floor", "verdict"], rows))
    print(
        "('-': not run or failed; the floor's calls are computed, its seconds measured; calls"
        f"\nare the first run's, seconds the median of {repeat} run(s), on a shared machine)"
    )
    return verdicts


def print_simulated_table(sims: list[SimRun]) -> None:
    header = ["metric"]
    for s in sims:
        header += [f"N={s.workers} dask-aws", f"N={s.workers} peer (documented)"]

    def ops(counter: Counter[str], name: str) -> int:
        return sum(v for k, v in counter.items() if k.split(":")[1] == name)

    def line(name: str, ours: Any, peer: Any) -> list[str]:
        cells = [name]
        for s in sims:
            cells += [
                _fmt(ours(s)) if not (s.error and ours(s) is None) else "fail",
                peer(s.workers),
            ]
        return cells

    rows = [
        line("seconds to Ready", lambda s: s.ready_seconds, lambda n: "not measured"),
        line("reconcile steps", lambda s: s.steps, lambda n: "-"),
        line("RunTask calls", lambda s: ops(s.start_calls, "RunTask"), lambda n: f"{n + 1}"),
        line(
            "DescribeTasks calls",
            lambda s: ops(s.start_calls, "DescribeTasks"),
            lambda n: f">= {2 * (n + 1)}",
        ),
        line(
            "all AWS API calls to Ready",
            lambda s: sum(s.start_calls.values()),
            lambda n: f">= {5 * (n + 1)} + setup",
        ),
        line("seconds to delete", lambda s: s.delete_seconds, lambda n: "not measured"),
        line(
            "StopTask calls in delete",
            lambda s: ops(s.delete_calls, "StopTask"),
            lambda n: f"{n + 1}",
        ),
        line(
            "all AWS API calls in delete",
            lambda s: sum(s.delete_calls.values()),
            lambda n: f">= {2 * (n + 1)} + teardown",
        ),
        line("owned resources left after delete", lambda s: len(s.left), lambda n: "-"),
    ]
    print(_table(header, rows))
    print(
        "\npeer (documented), from dask_cloudprovider/aws/ecs.py Task.start and Task.close: one\n"
        "RunTask(count=1) per task (N workers + 1 scheduler), each task polled with\n"
        "DescribeTasks until it leaves PENDING/PROVISIONING with no sleep in between (>= 2 per\n"
        "task), plus ListAccountSettings and DescribeNetworkInterfaces per task (>= 5 calls per\n"
        "task); close() is StopTask + DescribeTasks per task. Not measured here (the peer\n"
        "cannot run at this scale on the local AWS: it needs a reachable scheduler)."
    )
    for s in sims:
        by_op = ", ".join(f"{k} {v}" for k, v in sorted(s.start_calls.items()))
        print(f"\nN={s.workers} dask-aws calls to Ready: {by_op}")
        print(f"  server-side count equals the client-side boto3 count: {s.client_side_agrees}")
        by_op = ", ".join(f"{k} {v}" for k, v in sorted(s.delete_calls.items()))
        print(f"N={s.workers} dask-aws calls in delete: {by_op}")
        if s.error:
            print(f"N={s.workers}: FAILED {s.error}")
        if s.left:
            print(f"N={s.workers}: left {', '.join(s.left)}")


# -- main ----------------------------------------------------------------------------------------
def _git() -> str:
    def out(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip()

    dirty = [d for d in ("operator", "benchmarks") if out("status", "--porcelain", "--", d)]
    edits = " and ".join(f"{d}/" for d in dirty)
    return out("rev-parse", "--short", "HEAD") + (
        f" (+ uncommitted edits in {edits})" if dirty else ""
    )


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_up", description=__doc__)
    parser.add_argument(
        "--workers", type=_sizes, default=[2, 10], help="process mode N list (targets: 2 and 10)"
    )
    parser.add_argument("--sim-workers", type=_sizes, default=[100, 500], help="simulated N list")
    parser.add_argument("--no-peer", action="store_true", help="skip dask-cloudprovider")
    parser.add_argument("--no-peer-setup", action="store_true", help="never create the peer venv")
    parser.add_argument("--timeout", type=float, default=120.0, help="per cluster start, seconds")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before close()")
    parser.add_argument(
        "--no-probes", action="store_true", help="skip the peer's out-of-the-box runs"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the measured floor")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per (implementation, N); seconds are their median, calls the first run's",
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()

    import dask
    import distributed

    began = time.monotonic()
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"dask-aws: {_git()}, dask {dask.__version__}, distributed {distributed.__version__}")
    peer_error: str | None = "skipped (--no-peer)"
    if not args.no_peer:
        peer_error, versions = ensure_peer(args.no_peer_setup)
        if versions:
            print("peer: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if peer_error:
        print(f"peer: NOT RUN: {peer_error}")
    print(flush=True)

    runs: dict[tuple[int, str], Run] = {}
    probes: list[tuple[str, Run]] = []
    with tempfile.TemporaryDirectory(prefix="dask-aws-bench-shims-") as shim_dir:
        shims = legacy_entry_points(Path(shim_dir))
        if not peer_error and not args.no_probes:
            # The peer as it comes, without each of the two stand-ins the runs below use.
            for what, kwargs in (
                ("without the taskLongArnFormat account setting", {"long_arn": False}),
                ("without dask-scheduler/dask-worker executables", {"shims": None}),
            ):
                print(f"probe: dask-cloudprovider N=1 {what} ...", end=" ", flush=True)
                options: dict[str, Any] = {"shims": shims, **kwargs}
                probe = run_cluster("dask-cloudprovider", 1, 60.0, settle=0.0, **options)
                probes.append((what, probe))
                print("FAILED (as below)" if probe.error else "ok", flush=True)
        columns = [
            c
            for c in COLUMNS
            if not (c == FLOOR and args.no_floor) and not (c == IMPLS[1] and peer_error)
        ]
        for n in args.workers:
            tries: dict[str, list[Run]] = {c: [] for c in columns}
            # Rounds interleave the implementations, so that a slow spell of the machine
            # does not fall on one of them only.
            for round_ in range(max(1, args.repeat)):
                for impl in columns:
                    if tries[impl] and tries[impl][-1].error:
                        continue
                    t = time.monotonic()
                    label = f" (run {round_ + 1}/{args.repeat})" if args.repeat > 1 else ""
                    print(f"process mode: {impl} N={n}{label} ...", end=" ", flush=True)
                    if impl == FLOOR:
                        one = run_floor(n, args.timeout, aws_call_floor(n))
                    else:
                        one = run_cluster(impl, n, args.timeout, shims=shims, settle=args.settle)
                    tries[impl].append(one)
                    status = f"FAILED: {one.error}" if one.error else "ok"
                    print(f"{status} ({time.monotonic() - t:.0f}s)", flush=True)
            for impl, done in tries.items():
                run = done[-1] if done[-1].error else done[0]
                run.repeats = [(r.ready_seconds, total_calls(r)) for r in done]
                if not run.error and len(done) > 1:
                    run.ready_seconds = statistics.median(r.ready_seconds or 0.0 for r in done)
                runs[(n, impl)] = run
    if probes:
        print("\n== dask-cloudprovider out of the box on the local AWS ==")
        for what, probe in probes:
            print(f"N=1 {what}: " + (f"FAILED {probe.error}" if probe.error else "ok"))
            for reason, count in probe.stopped_reasons.most_common():
                print(f"  {count} task(s) STOPPED: {reason}")
            for text, count in probe.exceptions.most_common(3):
                print(f"  stderr {count}x {text}")
        print(
            "The runs below therefore put taskLongArnFormat=enabled on the account (AWS's\n"
            "default) and `dask-scheduler`/`dask-worker` shims that exec `dask scheduler`/\n"
            "`dask worker` on the containers' PATH (an image that still ships them), for both\n"
            "implementations."
        )
    print(
        "\n== Process mode: FargateCluster(n_workers=N) until a Client sees N workers, "
        f"{args.settle:g} s idle, then close() =="
    )
    print("(peer = dask-cloudprovider's FargateCluster; every count is server-side)")
    print_process_table(runs, args.workers)
    if not args.no_floor:
        print_floor(runs, args.workers)

    sims = []
    for n in args.sim_workers:
        t = time.monotonic()
        print(f"\nsimulated mode: dask-aws engine N={n} ...", end=" ", flush=True)
        sims.append(run_simulated(n, timeout=max(args.timeout, 120.0)))
        print(f"{'FAILED' if sims[-1].error else 'ok'} ({time.monotonic() - t:.0f}s)", flush=True)
    if sims:
        print("\n== Simulated mode (no processes): the dask-aws engine to Ready, then delete ==")
        print_simulated_table(sims)
    print_targets(runs, args.repeat)
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    return 1 if any(r.error for r in runs.values()) or any(s.error for s in sims) else 0


if __name__ == "__main__":
    sys.exit(main())
