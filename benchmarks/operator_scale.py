"""Operator scale benchmark: one operator replica with many DaskAwsClusters.

    .venv/bin/python -m benchmarks.operator_scale [--clusters 20,100] [--steady 60]

One real API server (tests/k8s/controlplane.py: etcd + kube-apiserver, no kubelet) is started
and kept for the whole run. For each N, on a fresh local AWS in simulated mode (ECS tasks
become RUNNING at once on loopback addresses, no processes) with moto's request recorder on
(benchmarks.measure.RecordedAws), a fresh `dask-aws operator` process watches a fresh
namespace (tests/fixtures/operator.py's OperatorProcess, with the default resync of 60 s).
Then:

1. create: one `kubectl apply -f` of N DaskAwsClusters (scheduler and workers cpu 256,
   memory 512, 2 workers); seconds until every object is Ready at its generation (polling
   `kubectl get dac -o json` every second);
2. steady: nothing changes for --steady seconds (nobody polls kubectl meanwhile): AWS calls,
   reconciles, Kubernetes API requests on DaskAwsClusters, operator CPU seconds and RSS;
3. scale: `kubectl scale dac --all --replicas=4`; seconds until every object is Ready at its
   new generation with status.replicas 4;
4. delete: `kubectl delete dac --all`; seconds until no object is left, then until nothing
   tagged with any of the N owners is left on the AWS (checked in one pass; the first
   owner is also checked with tests/fixtures/leaks.py's `tagged_resources`).

AWS calls come from the operator's own metrics (dask_aws_aws_calls_total) and are checked
against the server's recording (every request the local AWS received); reconciles from
dask_aws_reconciles_total; Kubernetes requests from the API server's apiserver_request_total.
The Kubernetes-native peer (dask-kubernetes' operator) needs pods to run, which this API
server has not; its documented timer settings are printed as context, never measured.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.polling import wait_for
from tests.k8s.controlplane import ControlPlane, resolve_bin_dir

from benchmarks.measure import RecordedAws
from benchmarks.scale_up import _fmt, _git, _sizes, _table
from benchmarks.signals import exit_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
CRDS = ROOT / "crds"
POLL = 1.0  # seconds between `kubectl get dac` polls while waiting
SIZE = {"cpu": 256, "memory": 512}
PHASES = ("create", "steady", "scale", "delete")


# -- the operator's and the API server's counters --------------------------------------------
def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), float(sample.value)))
    return found


@dataclass
class Counters:
    """Cumulative counters at one moment."""

    at: float
    aws: Counter[str] = field(default_factory=Counter)  # operation -> calls (any outcome)
    aws_errors: Counter[str] = field(default_factory=Counter)  # operation/outcome -> calls
    reconciles: Counter[str] = field(default_factory=Counter)  # kind:result -> steps
    kube: Counter[str] = field(default_factory=Counter)  # VERB resource -> requests
    server_calls: int = 0  # requests recorded by the local AWS
    cpu: float = 0.0  # operator process tree, user + system seconds
    rss: int = 0  # operator process tree, bytes
    aws_cpu: float = 0.0  # the local AWS server process
    apiserver_cpu: float = 0.0  # kube-apiserver + etcd

    def minus(self, before: Counters) -> Counters:
        return Counters(
            at=self.at - before.at,
            aws=self.aws - before.aws,
            aws_errors=self.aws_errors - before.aws_errors,
            reconciles=self.reconciles - before.reconciles,
            kube=self.kube - before.kube,
            server_calls=self.server_calls - before.server_calls,
            cpu=self.cpu - before.cpu,
            rss=self.rss,
            aws_cpu=self.aws_cpu - before.aws_cpu,
            apiserver_cpu=self.apiserver_cpu - before.apiserver_cpu,
        )


def _tree_cpu_rss(pid: int | None) -> tuple[float, int]:
    if pid is None:
        return 0.0, 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        cpu, rss = 0.0, 0
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
        return cpu, rss
    return 0.0, 0


class Probe:
    def __init__(self, cp: ControlPlane, operator: OperatorProcess, aws: RecordedAws) -> None:
        self.cp, self.operator, self.aws = cp, operator, aws
        self.apiserver_pids = [p.pid for p in cp._procs.values()]

    def read(self) -> Counters:
        now = time.monotonic()
        counters = Counters(at=now)
        text = self.operator.metrics()
        for labels, value in _samples(text, "dask_aws_aws_calls_total"):
            counters.aws[labels["operation"]] += int(value)
            if labels["outcome"] != "ok":
                counters.aws_errors[f"{labels['operation']}/{labels['outcome']}"] += int(value)
        counters.server_calls = self.aws.mark()  # right after the operator's counters
        for labels, value in _samples(text, "dask_aws_reconciles_total"):
            counters.reconciles[f"{labels['kind']}:{labels['result']}"] += int(value)
        raw = self.cp.kubectl("get", "--raw", "/metrics").stdout
        for labels, value in _samples(raw, "apiserver_request_total"):
            resource = labels.get("resource", "")
            if resource in {"daskawsclusters", "events", "secrets"}:
                sub = labels.get("subresource")
                key = f"{labels['verb']} {resource}{'/' + sub if sub else ''}"
                counters.kube[key] += int(value)
        assert self.operator.proc is not None
        counters.cpu, counters.rss = _tree_cpu_rss(self.operator.proc.pid)
        counters.aws_cpu = _tree_cpu_rss(self.aws.local.pid)[0]
        counters.apiserver_cpu = sum(_tree_cpu_rss(p)[0] for p in self.apiserver_pids)
        return counters


# -- the objects ---------------------------------------------------------------------------------
def manifests(count: int) -> str:
    docs = [
        {
            "apiVersion": "daskaws.io/v1alpha1",
            "kind": "DaskAwsCluster",
            "metadata": {"name": f"bench-{i:03d}"},
            "spec": {
                "scheduler": dict(SIZE),
                "workers": {"replicas": 2, **SIZE},
                "deletionPolicy": "Delete",
            },
        }
        for i in range(count)
    ]
    return yaml.safe_dump_all(docs)


def list_objects(cp: ControlPlane, ns: str) -> list[dict[str, Any]]:
    out = cp.kubectl("get", "dac", "-n", ns, "-o", "json").stdout
    return list(json.loads(out)["items"])


def is_ready(obj: dict[str, Any], replicas: int) -> bool:
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
    return (
        ready is not None
        and ready.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"].get("generation")
        and status.get("replicas") == replicas
    )


def seconds_until(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> float:
    """Seconds until check() holds, polled every POLL s."""
    start = time.monotonic()
    wait_for(check, timeout, what, interval=POLL)
    return time.monotonic() - start


def seconds_until_ready(cp: ControlPlane, ns: str, count: int, replicas: int) -> float:
    def counts() -> tuple[int, int]:
        items = list_objects(cp, ns)
        return len(items), sum(is_ready(o, replicas) for o in items)

    return seconds_until(
        lambda: counts() == (count, count),
        120 + 3 * count,
        lambda: f"all {count} Ready with {replicas} workers (listed, Ready: {counts()})",
    )


def leftovers(endpoint: str, uids: set[str]) -> list[str]:
    """Everything on the AWS tagged with any of `uids` that still exists, in one pass."""
    return tagged_resources(aws_for(endpoint)[0], uids)


def _changed(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths (below metadata and status) whose values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            if key in {"resourceVersion", "managedFields"}:
                continue
            if path == "" and key not in {"metadata", "status"}:
                continue
            found += _changed(old.get(key), new.get(key), f"{path}.{key}")
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for o, n in zip(old, new, strict=True):
            index = o.get("type", "") if isinstance(o, dict) else ""
            found += _changed(o, n, f"{path}[{index}]")
        return found
    return [] if old == new else [path]


# -- one N ---------------------------------------------------------------------------------------
@dataclass
class Run:
    clusters: int
    seconds: dict[str, float] = field(default_factory=dict)
    phase: dict[str, Counters] = field(default_factory=dict)
    rss_max: int = 0
    rss_start: int = 0
    changed_in_steady: int = 0  # objects whose resourceVersion moved during the steady window
    changed_fields: Counter[str] = field(default_factory=Counter)  # what moved, by path
    changed_examples: list[str] = field(default_factory=list)  # a few, with both values
    left: list[str] = field(default_factory=list)
    left_first: list[str] = field(default_factory=list)
    operator_log: str = ""
    error: str | None = None


def run_one(cp: ControlPlane, count: int, steady: float, resync: str, work: Path) -> Run:
    run = Run(count)
    ns = cp.create_namespace(f"bench-{count}-{os.getpid()}")
    with RecordedAws(simulated=True) as aws:
        log = work / f"operator-{count}.log"
        run.operator_log = str(log)
        operator = OperatorProcess(
            cp.kubeconfig, aws.local.env(), ns, log, {"DASK_AWS_RESYNC_SECONDS": resync}
        ).start()
        try:
            probe = Probe(cp, operator, aws)
            marks = {"start": probe.read()}
            cp.kubectl("apply", "-n", ns, "-f", "-", input=manifests(count), timeout=300)
            run.seconds["create"] = seconds_until_ready(cp, ns, count, 2)
            marks["ready"] = probe.read()
            before = {o["metadata"]["uid"]: o for o in list_objects(cp, ns)}
            uids = set(before)
            # steady: nobody touches anything; only the operator's tree is sampled
            run.rss_start = marks["ready"].rss
            start = time.monotonic()
            while time.monotonic() - start < steady:
                time.sleep(min(2.0, steady - (time.monotonic() - start)))
                run.rss_max = max(run.rss_max, _tree_cpu_rss(operator.proc.pid)[1])  # type: ignore[union-attr]
            marks["steady"] = probe.read()
            after = list_objects(cp, ns)
            for obj in after:
                old = before.get(obj["metadata"]["uid"], {})
                if (
                    old.get("metadata", {}).get("resourceVersion")
                    != obj["metadata"]["resourceVersion"]
                ):
                    run.changed_in_steady += 1
                    paths = _changed(old, obj)
                    run.changed_fields.update(paths)
                    if len(run.changed_examples) < 3:
                        run.changed_examples += [_example(old, obj, p) for p in paths[:2]]
            if not all(is_ready(o, 2) for o in after):
                run.error = "some object left Ready during the steady window"
            cp.kubectl("scale", "dac", "--all", "-n", ns, "--replicas=4", timeout=300)
            run.seconds["scale"] = seconds_until_ready(cp, ns, count, 4)
            marks["scale"] = probe.read()
            start = time.monotonic()
            cp.kubectl("delete", "dac", "--all", "-n", ns, "--wait=false", timeout=300)
            run.seconds["objects gone"] = seconds_until(
                lambda: not list_objects(cp, ns),
                120 + 3 * count,
                lambda: f"all deleted ({len(list_objects(cp, ns))} objects left)",
            )
            marks["delete"] = probe.read()
            # The operator's counters stop here; the scan's own calls are not counted.
            while True:
                run.left = leftovers(aws.local.endpoint_url, uids)
                if not run.left or time.monotonic() - start > 120 + 3 * count:
                    break
                time.sleep(POLL)
            run.seconds["nothing tagged left"] = time.monotonic() - start
            first_uid = sorted(uids)[0]
            run.left_first = tagged_resources(aws_for(aws.local.endpoint_url)[0], first_uid)
            previous = marks["start"]
            for name, key in zip(PHASES, ("ready", "steady", "scale", "delete"), strict=True):
                run.phase[name] = marks[key].minus(previous)
                previous = marks[key]
        except Exception as exc:  # report what was measured so far, with the operator's log
            run.error = f"{type(exc).__name__}: {exc}\n--- operator log ---\n{operator.log_tail()}"
        finally:
            operator.stop()
            cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return run


# -- the report ----------------------------------------------------------------------------------
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def _writes(counters: Counters) -> int:
    """Requests that write DaskAwsClusters (any subresource), by anyone (the benchmark's
    apply/scale/delete included: 1 apply of N objects, 1 scale per object, 1 delete)."""
    return sum(
        v
        for k, v in counters.kube.items()
        if k.split()[0] in WRITE_VERBS and k.split()[1].startswith("daskawsclusters")
    )


def _per_minute(value: float, seconds: float) -> float:
    return value * 60.0 / seconds if seconds else 0.0


def print_run(run: Run, resync: str) -> None:
    n = run.clusters
    print(f"\n=== N = {n} DaskAwsClusters (2 workers each, then 4), one operator replica ===")
    if run.error:
        print(f"ERROR: {run.error}")
    if len(run.phase) < len(PHASES):
        return
    rows: list[list[str]] = []

    def row(name: str, values: list[Any], digits: int = 1) -> None:
        rows.append([name, *(_fmt(v, digits) for v in values)])

    ph = [run.phase[p] for p in PHASES]
    seconds = [run.seconds["create"], ph[1].at, run.seconds["scale"], run.seconds["objects gone"]]
    row("seconds (create/scale: until all Ready; delete: objects gone)", seconds)
    row("AWS calls (operator metrics)", [sum(p.aws.values()) for p in ph], 0)
    row("AWS calls (recorded by the local AWS)", [p.server_calls for p in ph], 0)
    row("AWS calls per cluster", [sum(p.aws.values()) / n for p in ph], 1)
    row("AWS calls answered with an error", [sum(p.aws_errors.values()) for p in ph], 0)
    row(
        "reconcile steps (ok+error)",
        [sum(v for k, v in p.reconciles.items() if k.startswith("reconcile:")) for p in ph],
        0,
    )
    row(
        "delete steps (ok+error)",
        [sum(v for k, v in p.reconciles.items() if k.startswith("delete:")) for p in ph],
        0,
    )
    row("Kubernetes writes on DaskAwsClusters", [_writes(p) for p in ph], 0)
    row("Kubernetes Events created", [p.kube.get("POST events", 0) for p in ph], 0)
    row("operator CPU seconds (process tree)", [p.cpu for p in ph], 1)
    row("operator CPU, % of one core", [100.0 * p.cpu / p.at for p in ph], 0)
    row("local AWS server CPU seconds", [p.aws_cpu for p in ph], 1)
    row("kube-apiserver + etcd CPU seconds", [p.apiserver_cpu for p in ph], 1)
    row("operator RSS at end, MiB", [p.rss / 2**20 for p in ph], 0)
    print(_table(["", *PHASES], rows))
    s = run.phase["steady"]
    window = s.at
    print(f"\nsteady state, {window:.0f} s with nothing changing (resync {resync} s):")
    aws_calls = sum(s.aws.values())
    reconciles = sum(v for k, v in s.reconciles.items() if k.startswith("reconcile:"))
    writes = _writes(s)
    lines = [
        ["AWS calls per minute", _fmt(_per_minute(aws_calls, window))],
        ["AWS calls per cluster per minute", _fmt(_per_minute(aws_calls, window) / n, 2)],
        ["reconcile steps per minute", _fmt(_per_minute(reconciles, window))],
        ["AWS calls per reconcile step", _fmt(aws_calls / reconciles if reconciles else None, 1)],
        ["Kubernetes writes on DaskAwsClusters per minute", _fmt(_per_minute(writes, window))],
        ["objects whose resourceVersion moved", f"{run.changed_in_steady}/{n}"],
        ["what moved (path: objects)", _ops(run.changed_fields)],
        ["for example (object path: before -> after)", "; ".join(run.changed_examples) or "-"],
        ["operator CPU seconds per minute", _fmt(_per_minute(s.cpu, window), 2)],
        ["operator CPU ms per cluster per minute", _fmt(1000 * _per_minute(s.cpu, window) / n)],
        [
            "operator RSS MiB (start / max / end)",
            f"{run.rss_start / 2**20:.0f} / {run.rss_max / 2**20:.0f} / {s.rss / 2**20:.0f}",
        ],
    ]
    print(_table(["", "value"], lines))
    print(f"AWS calls by operation, steady: {_ops(s.aws)}")
    print(
        f"\nteardown: nothing tagged with any of the {n} owners left after "
        f"{run.seconds['nothing tagged left']:.1f} s (from `kubectl delete`); left: "
        f"{len(run.left)}; tagged_resources(first owner): {len(run.left_first)}"
    )
    for name in ("create", "scale", "delete"):
        counters = run.phase[name]
        print(f"AWS calls by operation, {name}: " + _ops(counters.aws))
        if counters.aws_errors:
            print(f"  of which errors: {_ops(counters.aws_errors)}")
    print(f"operator log: {run.operator_log}")
    print_targets(run, float(resync))


# Issue 14's targets for one operator replica on 2 cores (simulated local AWS).
READY_SECONDS_AT_300 = 120.0
RSS_MIB = 300.0
CALLS_PER_RESYNC = 2.0


def print_targets(run: Run, resync: float) -> None:
    """Each target beside the value this run measured: PASS or MISS."""
    s = run.phase["steady"]
    n, window = run.clusters, s.at
    per_resync = sum(s.aws.values()) / n / (window / resync) if window else None
    rss = max(run.rss_max, s.rss) / 2**20
    rows: list[tuple[str, str, float | None]] = [
        ("steady AWS calls per cluster per resync", f"<= {CALLS_PER_RESYNC:g}", per_resync),
        ("steady mutating AWS calls", "0", sum(v for k, v in s.aws.items() if _mutating(k))),
        ("steady Kubernetes writes on DaskAwsClusters", "0", _writes(s)),
        ("steady objects whose resourceVersion moved", "0", run.changed_in_steady),
        ("operator RSS, MiB (max)", f"<= {RSS_MIB:g}", rss),
    ]
    if n >= 300:
        ready = ("seconds until all Ready", f"<= {READY_SECONDS_AT_300:g}", run.seconds["create"])
        rows.insert(0, ready)
    print(f"\ntargets at N={n} (issue 14):")
    lines = []
    for name, target, value in rows:
        bound = float(target.removeprefix("<= ")) if target.startswith("<=") else 0.0
        verdict = "-" if value is None else ("PASS" if value <= bound else "MISS")
        lines.append([name, target, _fmt(value, 2), verdict])
    print(_table(["", "target", "measured", ""], lines))


def _mutating(operation: str) -> bool:
    return not operation.startswith(("Describe", "List", "Get"))


def _example(old: Any, new: Any, path: str) -> str:
    """One moved value, so that a rewrite can be told from a change."""

    def at(obj: Any) -> Any:
        for part in path.strip(".").split("."):
            key = part.split("[")[0]
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    return f"{new['metadata']['name']} {path}: {at(old)!r} -> {at(new)!r}"


def _ops(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common()) or "-"


PEER = """\
For context, DOCUMENTED, NOT MEASURED (from /work/shared/notes/anchors.md; dask-kubernetes'
operator needs pods, which this API server never runs):
  dask-kubernetes operator: autoscaler = a 5 s kopf timer per DaskAutoscaler (reads the
  scheduler's /api/v1/adaptive_target, at most 25% down a step), 15 s cooldown. The notes give
  no numbers for many clusters, API calls per cluster or steady-state CPU.
dask-aws for comparison: one 2 s kopf timer per object runs a step when one is due: on a
  spec change, when the engine's requeue_after has passed while tasks start (250 ms doubling
  to 2 s, so in practice the 2 s tick), after the error backoff, and every resync once Ready
  (5 s with autoscaling). A quiet step reads ListTasks and DescribeTasks only; the rest is
  read again every drift period (DASK_AWS_DRIFT_SECONDS, 600 s)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.operator_scale", description=__doc__
    )
    parser.add_argument("--clusters", type=_sizes, default=[20, 100], help="N list")
    parser.add_argument("--steady", type=float, default=60.0, help="steady window, seconds")
    parser.add_argument("--resync", default="60", help="DASK_AWS_RESYNC_SECONDS for the operator")
    parser.add_argument("--keep-logs", type=Path, help="keep the operators' logs in this folder")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    started = time.monotonic()
    print(
        f"operator_scale: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"dask-aws {_git()}; local AWS simulated; resync {args.resync} s",
        flush=True,
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="dask-aws-opscale-") as tmp:
        work = Path(tmp)
        with ControlPlane(work / "k8s", resolve_bin_dir(), crds=CRDS) as cp:
            for count in args.clusters:
                print(f"N={count} ...", flush=True)
                logs = args.keep_logs or work
                logs.mkdir(parents=True, exist_ok=True)
                run = run_one(cp, count, args.steady, args.resync, logs)
                runs.append(run)
                print_run(run, args.resync)
    print()
    print(PEER)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
