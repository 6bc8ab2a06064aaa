"""`dask-aws local up`: the local AWS in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from dask_aws.local.quotas import DEFAULT_VCPU

# What the `local` extra brings and a plain `pip install dask-aws` (the operator image) lacks.
LOCAL_EXTRA_MODULES = ("moto", "werkzeug", "flask")
INSTALL_HINT = "pip install 'dask-aws[local]'"


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="a local AWS (ECS on local processes)")
    commands = local.add_subparsers(dest="local_command", required=True)
    up = commands.add_parser(
        "up",
        help="run the local AWS endpoint and data plane in the foreground",
        description="Start an AWS endpoint on 127.0.0.1:PORT whose ECS tasks run as local "
        "processes (or, with --simulated, run nothing). Blocks until SIGINT/SIGTERM, then "
        "stops every process it started.",
    )
    add_up_arguments(up)
    up.set_defaults(func=run_up)


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (0: any)")
    parser.add_argument("--simulated", action="store_true", help="start no processes")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL for containers without stopTimeout",
    )
    parser.add_argument("--address-quarantine", type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--address-base",
        default="127.1.0.0",
        help="first task address (default 127.1.0.0; never 127.0.0.x)",
    )
    parser.add_argument(
        "--fargate-vcpu-quota",
        type=float,
        default=DEFAULT_VCPU,
        help="the account's Fargate On-Demand vCPU quota (L-3032A538) per region",
    )
    parser.add_argument(
        "--fargate-spot-vcpu-quota",
        type=float,
        default=DEFAULT_VCPU,
        help="the account's Fargate Spot vCPU quota (L-36FBB829) per region",
    )
    parser.add_argument(
        "--latency",
        default="none",
        help="task start-up latency: none (default: RUNNING at once), aws (PROVISIONING and "
        "PENDING last as long as Fargate's, drawn per task; see dask_aws.local.latency) or "
        "aws:SCALE (every draw times SCALE, e.g. aws:0.1)",
    )
    parser.add_argument(
        "--latency-seed", type=int, default=0, help="seed of the latency draws (default 0)"
    )
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="WARNING", help=argparse.SUPPRESS)


CHECKIP_PATH = "/_local/checkip"


def env_for(endpoint_url: str, region: str) -> dict[str, str]:
    """What points AWS SDKs at the local AWS, and FargateCluster's lookup of this machine's
    public address (dask_aws.checkip-url) at the local AWS's stand-in for checkip."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "DASK_DASK_AWS__CHECKIP_URL": endpoint_url + CHECKIP_PATH,
    }


def _watch_parent(parent_pid: int, done: threading.Event) -> None:
    while not done.wait(0.5):
        if os.getppid() != parent_pid:
            done.set()


def run_up(args: argparse.Namespace) -> int:
    from dask_aws.local.latency import LatencyProfile

    try:
        latency = LatencyProfile.parse(args.latency, args.latency_seed)
    except ValueError as exc:
        raise SystemExit(f"--latency: {exc}") from None
    try:
        from dask_aws.local.server import LocalAwsServer
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in LOCAL_EXTRA_MODULES:
            raise
        raise SystemExit(
            "dask-aws local: the local AWS (moto's server) is not installed "
            f"({missing} is missing): {INSTALL_HINT}"
        ) from None
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = LocalAwsServer(
        port=args.port,
        simulated=args.simulated,
        stop_timeout=args.stop_timeout,
        region=args.region,
        address_quarantine=args.address_quarantine,
        address_base=args.address_base,
        fargate_vcpu_quota=args.fargate_vcpu_quota,
        fargate_spot_vcpu_quota=args.fargate_spot_vcpu_quota,
        latency=latency,
    )
    if args.address_base.startswith("127.0."):
        raise SystemExit("--address-base must not be in 127.0.0.0/16")
    server.start()
    try:
        env = env_for(server.endpoint_url, args.region)
        if args.ready_fd is not None:
            with os.fdopen(args.ready_fd, "w") as ready:
                ready.write(json.dumps({"port": server.port, "pid": os.getpid()}) + "\n")
        mode = "simulated (no processes)" if args.simulated else "processes"
        if latency.active:
            mode += f", latency {latency} seed {latency.seed}"
        print(f"dask-aws local AWS on {server.endpoint_url} ({mode}); Ctrl-C to stop.")
        print("Export:")
        for key, value in env.items():
            print(f"export {key}={value}")
        sys.stdout.flush()
        if args.parent_pid is not None:
            threading.Thread(
                target=_watch_parent, args=(args.parent_pid, done), daemon=True
            ).start()
        while not done.wait(0.1):
            pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()
        print("dask-aws local AWS stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dask_aws.local")
    add_up_arguments(parser)
    return run_up(parser.parse_args(argv))
