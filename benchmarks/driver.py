"""One cluster, start to close, in its own process: run by `benchmarks.scale_up`.

Runs under either interpreter: the project's .venv (``--impl dask-aws``) or
benchmarks/.venv-peer (``--impl dask-cloudprovider``), so it imports nothing from the
project. The AWS endpoint comes from the environment (AWS_ENDPOINT_URL, set by the caller
from ``LocalAws.env()``).

Protocol on stdout, one JSON object per line after the prefix ``BENCH ``:

- ``ready``: the Client saw N workers (``seconds`` since the constructor was called);
- then the driver waits for a line on stdin before closing;
- ``closed``: ``cluster.close()`` returned (``seconds`` it took);
- ``error``: the phase that failed and the exception text.

Anything else on stdout/stderr (progress lines, tracebacks) is the cluster's own output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

PREFIX = "BENCH "

# Small valid Fargate sizes (the local AWS does not enforce them; AWS would).
SMALL: dict[str, Any] = {
    "scheduler_cpu": 512,
    "scheduler_mem": 1024,
    "worker_cpu": 512,
    "worker_mem": 1024,
}


def emit(event: str, **fields: Any) -> None:
    print(PREFIX + json.dumps({"event": event, **fields}), flush=True)


def make_cluster(impl: str, workers: int) -> Any:
    if impl == "dask-aws":
        from dask_aws import FargateCluster

        return FargateCluster(n_workers=workers, **SMALL)
    from dask_cloudprovider.aws import FargateCluster as PeerFargateCluster

    return PeerFargateCluster(
        n_workers=workers,
        image="daskdev/dask:latest",  # not pulled: the local AWS runs its own Python
        # A public IP: without one a task in the default VPC's public subnets cannot pull
        # its image (the local AWS stops it as AWS does). The local AWS reports the task's
        # 127.x address as its public IP, so the peer connects there.
        fargate_use_private_ip=False,
        **SMALL,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("dask-aws", "dask-cloudprovider"), required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    from distributed import Client

    started = time.monotonic()
    try:
        cluster = make_cluster(args.impl, args.workers)
    except Exception as exc:
        emit("error", phase="start", error=f"{type(exc).__name__}: {exc}")
        return 2
    try:
        client = Client(cluster)
        client.wait_for_workers(args.workers, timeout=args.timeout)
        ready = time.monotonic() - started
        seen = len(client.scheduler_info(n_workers=-1)["workers"])
        check = client.submit(sum, range(101)).result(timeout=30)
    except Exception as exc:
        emit("error", phase="wait", error=f"{type(exc).__name__}: {exc}")
        cluster.close()
        return 2
    emit("ready", seconds=ready, workers=seen, check=check, scheduler=cluster.scheduler_address)

    sys.stdin.readline()  # the caller has counted the calls so far; close now
    closing = time.monotonic()
    try:
        client.close()
        cluster.close()
    except Exception as exc:
        emit("error", phase="close", error=f"{type(exc).__name__}: {exc}")
        return 3
    emit("closed", seconds=time.monotonic() - closing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
