"""Giving the memory the operator freed back to the operating system.

glibc's malloc keeps what a process frees for its next allocations and returns it to the
system only from the top of a heap. Creating many clusters at once (AWS answers, watch
events and certificates handled in 16 threads) frees most of what it allocated, but the free
pages stay resident between live ones: at 300 clusters the operator held 365 MiB, and one
malloc_trim(0) gave 100 MiB of it back (benchmarks/README.md). Python never calls it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from collections.abc import Callable

TRIM_SECONDS = 10.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim; None where the C library has none (musl, macOS). Looked up once:
    find_library runs ldconfig in a child process."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return function


def trim() -> bool:
    """Returns free heap pages to the system; False where that is not possible."""
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True


def start(interval: float = TRIM_SECONDS) -> threading.Thread | None:
    """Trims every `interval` seconds for the life of the process (a daemon thread): cheap
    (milliseconds) when there is nothing to give back."""
    if _malloc_trim() is None:
        return None

    def loop() -> None:
        while True:
            time.sleep(interval)
            trim()

    thread = threading.Thread(target=loop, name="dask-aws-heap-trim", daemon=True)
    thread.start()
    return thread
