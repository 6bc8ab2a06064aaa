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


FREED = """
import gc, time
from dask_aws.controller import heap

def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1])

blocks = [bytes(2000) + bytes([i % 256]) for i in range(100_000)]
pin = bytes(3000)  # allocated after them: the heap's top cannot come down
del blocks
gc.collect()
held = rss()
assert heap.start(interval=0.1) is not None
time.sleep(1.0)
print(held, rss())
"""


def test_memory_freed_after_a_burst_goes_back_to_the_system() -> None:
    # 200 MB allocated in 2 KB pieces and freed, as a creation burst does: glibc keeps it
    # resident until trimmed, and the operator trims in the background.
    out = subprocess.run(
        [sys.executable, "-c", FREED], capture_output=True, text=True, check=True, timeout=120
    )
    held, after = (int(kib) for kib in out.stdout.split())
    assert held > 150_000 and after < held - 150_000, (held, after)
