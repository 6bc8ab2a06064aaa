"""What the operator process loads before its first object: distributed (with numpy, about
30 MiB) only once a cluster's scheduler is talked to (autoscaling, idle, retiring)."""

from __future__ import annotations

import subprocess
import sys

LOADED = (
    "from dask_aws.cli import build_parser; build_parser();"
    "import dask_aws.controller.job_handlers, dask_aws.controller.cli, sys;"
    "print(' '.join(m for m in ('distributed', 'numpy', 'moto') if m in sys.modules))"
)


def test_the_operator_starts_without_distributed_numpy_or_moto() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
