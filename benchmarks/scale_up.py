"""Scale-up benchmark: dask-aws beside dask-cloudprovider, both on the local AWS.

    .venv/bin/python -m benchmarks.scale_up [--workers 2,8] [--sim-workers 100,500]

Part 1, process mode (real `dask scheduler`/`dask worker` processes on 127.x addresses): for
each N, on a fresh `LocalAws`, each implementation's FargateCluster(n_workers=N) runs in its
own process (benchmarks/driver.py; the peer under benchmarks/.venv-peer): time until a Client
sees N workers, AWS API calls by operation (counted by the server, see benchmarks.measure),
time of close(), the calls from close() to the process's exit, and what is left on the
account compared with a snapshot taken before.

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
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.measure import KINDS, RecordedAws, snapshot, stopped_reasons

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
DRIVER = HERE / "driver.py"
PEER_PYTHON = HERE / ".venv-peer" / "bin" / "python"
PEER_SETUP = HERE / "peer_setup.sh"
IMPLS = ("dask-aws", "dask-cloudprovider")
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


def _reader(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


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
        env = {
            **os.environ,
            **aws.local.env(),
            "PYTHONUNBUFFERED": "1",
            "DASK_AWS_LOOPBACK_ONLY": "1",
        }
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(key, None)
        with tempfile.TemporaryFile("w+") as stderr:
            start_mark = aws.mark()
            child = subprocess.Popen(
                [
                    *(python, str(DRIVER), "--impl", impl, "--workers", str(workers)),
                    *("--timeout", str(timeout)),
                ],
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
        # As FargateCluster and the operator drive it: again after requeue_after.
        while True:
            result = reconcile(engine_aws, tgt)
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
        while True:
            outcome = delete(engine_aws, tgt)
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
    return "dask-aws" if impl == "dask-aws" else "peer"


def print_process_table(runs: dict[tuple[int, str], Run], sizes: list[int]) -> None:
    header = ["metric"] + [f"N={n} {_short(i)}" for n in sizes for i in IMPLS]
    cols = [runs.get((n, i)) for n in sizes for i in IMPLS]

    def row(name: str, get: Any) -> list[str]:
        return [name] + [
            (
                "fail"
                if r is not None and r.error and get(r) is None
                else _fmt(get(r))
                if r is not None
                else "n/a"
            )
            for r in cols
        ]

    def ops(r: Run, names: tuple[str, ...], phase: str) -> int:
        calls = r.start_calls if phase == "start" else r.close_calls
        return sum(v for k, v in calls.items() if k.split(":")[1] in names)

    rows = [
        row("seconds until a Client sees N workers", lambda r: r.ready_seconds),
        row("workers the Client saw", lambda r: r.seen_workers),
        row("AWS API calls until then", lambda r: sum(r.start_calls.values())),
        row("  RunTask", lambda r: ops(r, ("RunTask",), "start")),
        row("  DescribeTasks", lambda r: ops(r, ("DescribeTasks",), "start")),
        row("AWS API calls in the idle seconds after", lambda r: sum(r.idle_calls.values())),
        row("seconds in close()", lambda r: r.close_seconds),
        row("seconds from close() to process exit", lambda r: r.exit_seconds),
        row("AWS API calls from close() to exit", lambda r: sum(r.close_calls.values())),
        row("  StopTask", lambda r: ops(r, ("StopTask",), "close")),
        row("  DescribeTasks", lambda r: ops(r, ("DescribeTasks",), "close")),
    ]
    for kind in KINDS:
        rows.append(row(f"left after exit: {kind}", lambda r, k=kind: len(r.left.get(k, []))))
    rows.append(row("container processes alive at exit", lambda r: r.processes_left))
    rows.append(row("exception lines on stderr", lambda r: sum(r.exceptions.values())))
    print(_table(header, rows))

    if len(sizes) >= 2:
        low, high = sizes[0], sizes[-1]
        print(
            f"\nAPI calls per added worker, until ready plus the idle seconds after, "
            f"(calls(N={high}) - calls(N={low})) / {high - low}:"
        )
        for impl in IMPLS:
            a, b = runs.get((low, impl)), runs.get((high, impl))
            if a and b and not a.error and not b.error:
                up = [sum((r.start_calls + r.idle_calls).values()) for r in (a, b)]
                print(f"  {impl}: {(up[1] - up[0]) / (high - low):.2f} ({up[0]} -> {up[1]})")

    operations = sorted({op for r in cols if r for op in r.start_calls | r.close_calls})
    print("\nAWS API calls by operation, until ready / from close() to exit:")
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

    dirty = out("status", "--porcelain", "--", "operator")
    return out("rev-parse", "--short", "HEAD") + (
        " (+ uncommitted edits in operator/)" if dirty else ""
    )


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_up", description=__doc__)
    parser.add_argument("--workers", type=_sizes, default=[2, 8], help="process mode N list")
    parser.add_argument("--sim-workers", type=_sizes, default=[100, 500], help="simulated N list")
    parser.add_argument("--no-peer", action="store_true", help="skip dask-cloudprovider")
    parser.add_argument("--no-peer-setup", action="store_true", help="never create the peer venv")
    parser.add_argument("--timeout", type=float, default=120.0, help="per cluster start, seconds")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before close()")
    parser.add_argument(
        "--no-probes", action="store_true", help="skip the peer's out-of-the-box runs"
    )
    args = parser.parse_args(argv)

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
        for n in args.workers:
            for impl in IMPLS:
                if impl != "dask-aws" and peer_error:
                    continue
                t = time.monotonic()
                print(f"process mode: {impl} N={n} ...", end=" ", flush=True)
                run = run_cluster(impl, n, args.timeout, shims=shims, settle=args.settle)
                runs[(n, impl)] = run
                status = f"FAILED: {run.error}" if run.error else "ok"
                print(f"{status} ({time.monotonic() - t:.0f}s)", flush=True)
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

    sims = []
    for n in args.sim_workers:
        t = time.monotonic()
        print(f"\nsimulated mode: dask-aws engine N={n} ...", end=" ", flush=True)
        sims.append(run_simulated(n, timeout=max(args.timeout, 120.0)))
        print(f"{'FAILED' if sims[-1].error else 'ok'} ({time.monotonic() - t:.0f}s)", flush=True)
    if sims:
        print("\n== Simulated mode (no processes): the dask-aws engine to Ready, then delete ==")
        print_simulated_table(sims)
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    return 1 if any(r.error for r in runs.values()) or any(s.error for s in sims) else 0


if __name__ == "__main__":
    sys.exit(main())
