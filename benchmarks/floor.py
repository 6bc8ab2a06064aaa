"""The floors of the scale-up benchmark: what no cluster manager can do with less.

Two floors, both for the FargateCluster that `benchmarks.driver` starts (n_workers=N and the
sizes of `driver.SMALL`, everything else dask-aws's default):

- **Seconds** (measured, `python -m benchmarks.floor --workers N`): the same `dask scheduler`
  and N `dask worker` commands that dask-aws's task definitions give the local AWS's
  containers (taken from `task_definitions.desired()` and rewritten by the local AWS's own
  `bind_dask_command`: the `sh -c` wrapper, `--nthreads`, `--memory-limit`,
  `--death-timeout`, `--protocol tls`, `--host`), started here as plain subprocesses with
  no AWS at all, each on its own loopback address, with the same TLS material the tasks
  get (a fresh `dask_aws.certs.issue()` bundle, as environment variables named as in the
  task definition's `secrets`). The time runs from the first `Popen` until
  `Client.wait_for_workers(N)` returns, the Client connecting with the bundle's client
  certificate. Speaks the driver's protocol (`BENCH ready`, a line on stdin, `BENCH closed`).
- **AWS calls** (computed, `aws_call_floor`): each call that is necessary once. For every row
  of dask-aws's resource table (`engine.resources.RESOURCES`) that the spec wants and does
  not name as existing, the calls that create it and that delete it; one RunTask for the
  scheduler and one per 10 workers (RunTask's `count` is at most 10); one StopTask per task
  (there is no batch form); and the lookups nothing else can answer (see `LOOKUPS`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

PREFIX = "BENCH "
ROOT = Path(__file__).resolve().parent.parent
# Loopback addresses of the floor's "tasks" (the local AWS uses 127.1.x.y; keep apart).
ADDRESS_BASE = "127.77.0."
RUN_TASK_BATCH = 10  # RunTask's count is 1..10
DESCRIBE_TASKS_BATCH = 100  # DescribeTasks takes at most 100 tasks
DELETE_TASK_DEFINITIONS_BATCH = 10  # DeleteTaskDefinitions takes at most 10 ARNs


# -- the spec and target dask-aws builds for the driver's cluster ----------------------------
def target_for(workers: int) -> Any:
    """(options, Target) exactly as `FargateCluster(n_workers=N, **driver.SMALL)` builds it."""
    from benchmarks.driver import SMALL
    from dask_aws.aws.found import Target
    from dask_aws.cluster import options
    from dask_aws.names import Owner

    built = options.build(options.FARGATE_KIND, {"n_workers": workers, **SMALL})
    uid = str(uuid.uuid4())
    owner = Owner(uid, uid[:8], kind=options.FARGATE_KIND)
    return built, Target(owner, built.spec)


# -- the AWS-call floor --------------------------------------------------------------------------
# Lookups that no create call answers, with why each is needed (a key of the result).
LOOKUPS = {
    "ec2:DescribeSubnets": "start: the subnets to run in and their VPC (the security group's "
    "VpcId); without given subnets one call filtered on default-for-az=true answers both",
    "ecs:DescribeTasks": "start: the scheduler's address (RunTask answers before the task's "
    "network interface has one); close: the tasks are STOPPED (their ENIs released) before "
    "the cluster and security group can go, one call per 100 tasks",
    "ec2:DescribeNetworkInterfaces": "start, when the client reaches the scheduler by a public "
    "IP (reach auto or public): DescribeTasks names the ENI, only the ENI has the public IP",
}


@dataclass
class CallFloor:
    start: Counter[str] = field(default_factory=Counter)  # until a Client sees N workers
    close: Counter[str] = field(default_factory=Counter)  # close() until nothing is left
    why: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.start.values()) + sum(self.close.values())


def aws_call_floor(workers: int) -> CallFloor:
    """The calls FargateCluster(n_workers=workers) cannot do without, per phase."""
    from dask_aws.aws import iam_roles
    from dask_aws.aws.task_definitions import Refs
    from dask_aws.engine.resources import RESOURCES

    built, target = target_for(workers)
    spec = target.spec
    floor = CallFloor()
    definitions = 0
    for resource in RESOURCES:
        if not resource.wanted(target):
            continue
        key = resource.key
        created: list[str]
        deleted: list[str]
        if key == "cluster":
            if spec.cluster_arn:
                continue  # an existing ECS cluster (ECSCluster): named, not made
            created, deleted = ["ecs:CreateCluster"], ["ecs:DeleteCluster"]
        elif key == "tls-secret":
            created, deleted = ["secretsmanager:CreateSecret"], ["secretsmanager:DeleteSecret"]
        elif key.endswith("-role"):
            kind = cast(Any, key.removesuffix("-role"))
            if iam_roles.user_arn(target, kind):
                continue
            # `desired` reads only the partition from its Aws; the secret's ARN only decides
            # whether the execution role needs its inline policy.
            refs = Refs("", "", "", "", tls_secret="secret" if spec.tls.enabled else None)
            want = iam_roles.desired(
                cast(Any, SimpleNamespace(partition="aws")), target, kind, refs
            )
            managed, inline = len(want.managed_policies), len(want.inline)
            created = ["iam:CreateRole"]
            created += ["iam:AttachRolePolicy"] * managed + ["iam:PutRolePolicy"] * inline
            deleted = ["iam:DetachRolePolicy"] * managed + ["iam:DeleteRolePolicy"] * inline
            deleted += ["iam:DeleteRole"]
        elif key == "security-group":
            if spec.network.security_groups:
                continue
            # One AuthorizeSecurityGroupIngress carries every rule.
            created = ["ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress"]
            deleted = ["ec2:DeleteSecurityGroup"]
        elif key == "log-group":
            if spec.logs.group:
                continue
            created = ["logs:CreateLogGroup"]
            if spec.logs.retention_days:
                created.append("logs:PutRetentionPolicy")
            deleted = ["logs:DeleteLogGroup"]
        elif key.endswith("-task-definition"):
            definitions += 1
            created = ["ecs:RegisterTaskDefinition"]
            deleted = ["ecs:DeregisterTaskDefinition"]
        else:
            raise ValueError(f"the AWS-call floor does not know resource {key!r}: add it here")
        floor.start.update(created)
        floor.close.update(deleted)
        floor.why.append(f"{resource.label}: {' + '.join(created)}; {' + '.join(deleted)}")
    if definitions:
        floor.close["ecs:DeleteTaskDefinitions"] += math.ceil(
            definitions / DELETE_TASK_DEFINITIONS_BATCH
        )
    tasks = 1 + workers
    floor.start["ecs:RunTask"] += 1 + math.ceil(workers / RUN_TASK_BATCH)
    floor.close["ecs:StopTask"] += tasks
    floor.why.append(
        f"tasks: RunTask x{floor.start['ecs:RunTask']} (scheduler, then workers {RUN_TASK_BATCH} "
        f"a call); StopTask x{tasks} (one per task)"
    )
    if not spec.network.subnets or not spec.network.security_groups:
        floor.start["ec2:DescribeSubnets"] += 1
    floor.start["ecs:DescribeTasks"] += 1
    floor.close["ecs:DescribeTasks"] += math.ceil(tasks / DESCRIBE_TASKS_BATCH)
    if built.reach != "private":
        floor.start["ec2:DescribeNetworkInterfaces"] += 1
    floor.why += [f"{op}: {text}" for op, text in LOOKUPS.items()]
    return floor


# -- the process floor: the same commands, no AWS -------------------------------------------------
def _commands(
    workers: int,
) -> tuple[list[str], list[list[str]], dict[str, str], dict[str, str], Any]:
    """(scheduler argv, worker argvs, scheduler env, worker env, client Security)."""
    from dask_aws import certs
    from dask_aws.aws import task_definitions as tds
    from dask_aws.aws.task_definitions import Refs
    from dask_aws.local import specs

    _, target = target_for(workers)
    spec = target.spec
    bundle = certs.issue(target.owner.uid, 1) if spec.tls.enabled else None
    by_key = json.loads(bundle.to_json()) if bundle else {}
    refs = Refs("", "", "floor", "us-east-1", tls_secret="floor" if bundle else None)
    base = {k: os.environ[k] for k in specs.PASSTHROUGH_ENV if k in os.environ}
    base |= {"PATH": specs.local_path(), "PYTHONUNBUFFERED": "1"}

    def container(component: Any, ip: str) -> tuple[list[str], dict[str, str]]:
        definition = tds.desired(target, component, refs)["containerDefinitions"][0]
        env = dict(base)
        env.update({e["name"]: e["value"] for e in definition["environment"]})
        for secret in definition["secrets"]:
            # `<arn>:<json key>::<version>`, as the local AWS resolves it from the secret
            env[secret["name"]] = by_key[secret["valueFrom"].split(":")[-3]]
        return specs.bind_dask_command(definition["command"], ip), env

    scheduler_ip = ADDRESS_BASE + "2"
    scheduler, scheduler_env = container("scheduler", scheduler_ip)
    worker_argvs = []
    worker_env: dict[str, str] = {}
    for index in range(workers):
        argv, worker_env = container("worker", f"{ADDRESS_BASE}{10 + index}")
        worker_argvs.append(argv)
    worker_env[tds.SCHEDULER_ADDRESS_ENV] = tds.comm_address(spec, scheduler_ip)
    security = bundle.client_security() if bundle else None
    return scheduler, worker_argvs, scheduler_env, worker_env, security


def describe(workers: int) -> str:
    """One line for people: what the floor runs."""
    scheduler, worker_argvs, _, worker_env, security = _commands(workers)

    def short(argv: list[str]) -> str:
        dask = argv[4:] if argv[:2] == ["sh", "-c"] else argv  # the wrapper's "$@"
        return re.sub(r"127\.\d+\.\d+\.\d+", "<ip>", " ".join(dask))

    return (
        f"`{short(scheduler)}` and N x `{short(worker_argvs[0])}`, "
        f"{TLS_NOTE if security else 'plain tcp'}"
        f", each process on its own 127.77.0.x address, scheduler at "
        f"{worker_env['DASK_SCHEDULER_ADDRESS']}"
    )


TLS_NOTE = (
    "mutual TLS (certificates from dask_aws.certs.issue, the sh -c wrapper of the task definition)"
)


def emit(event: str, **fields: Any) -> None:
    print(PREFIX + json.dumps({"event": event, **fields}), flush=True)


def _stop(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    from distributed import Client

    scheduler, worker_argvs, scheduler_env, worker_env, security = _commands(args.workers)
    address = worker_env["DASK_SCHEDULER_ADDRESS"]
    processes: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], env: dict[str, str]) -> None:
        processes.append(
            subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # one process group each, as the local AWS does
            )
        )

    try:
        started = time.monotonic()
        start(scheduler, scheduler_env)
        for argv in worker_argvs:
            start(argv, worker_env)
        client = Client(address, security=security, timeout=args.timeout)  # type: ignore[no-untyped-call]
        client.wait_for_workers(args.workers, timeout=args.timeout)
        ready = time.monotonic() - started
        seen = len(client.scheduler_info(n_workers=-1)["workers"])
        check = client.submit(sum, range(101)).result(timeout=30)
    except Exception as exc:
        emit("error", phase="wait", error=f"{type(exc).__name__}: {exc}")
        _stop(processes, 10.0)
        return 2
    emit("ready", seconds=ready, workers=seen, check=check, scheduler=address)
    sys.stdin.readline()
    closing = time.monotonic()
    client.close()  # type: ignore[no-untyped-call]
    _stop(processes, 30.0)
    emit("closed", seconds=time.monotonic() - closing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
