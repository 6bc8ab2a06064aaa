"""The HTTP 5xx answers moto gave: each is a bug of the local AWS (a moto crash, an
unpatched gap), since AWS would have accepted or refused the request with a 4xx.

The middleware records every 5xx that comes out of moto's app, and every exception that
escapes it; faults injected on purpose (`faults.py`) never reach moto, so they are not
recorded. Read over `GET /_local/server-errors` (`LocalAws.server_errors()`); the test
fixtures fail a test during which the local AWS it used recorded one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

MAX_KEPT = 100


class ServerErrorLog:
    """The last `MAX_KEPT` 5xx answers, and how many there were. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[dict[str, Any]] = []
        self._count = 0

    def record(self, operation: str, status: int, detail: str, path: str) -> None:
        last = detail.strip().splitlines()[-1] if detail.strip() else ""
        logger.error("local AWS answered HTTP %s to %s (%s): %s", status, operation, path, last)
        with self._lock:
            self._count += 1
            self._errors.append(
                {
                    "operation": operation,
                    "status": status,
                    "path": path,
                    "detail": detail[-2000:],  # a traceback's end says most
                    "time": time.time(),
                }
            )
            del self._errors[:-MAX_KEPT]

    def describe(self, clear: bool = False) -> dict[str, Any]:
        with self._lock:
            result = {"count": self._count, "errors": list(self._errors)}
            if clear:
                self._errors.clear()
                self._count = 0
        return result
