"""A benchmark stopped with SIGTERM runs its clean-up, as after Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

SCRIPT = """
import time
from benchmarks.signals import exit_on_sigterm
exit_on_sigterm()
try:
    print("started", flush=True)
    time.sleep(60)
finally:
    print("stopped what it started", flush=True)
"""


def test_sigterm_runs_the_finally_blocks_that_stop_the_operator() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "stopped what it started" in out
    assert proc.returncode == 128 + signal.SIGTERM
