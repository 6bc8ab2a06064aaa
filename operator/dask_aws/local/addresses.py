"""Loopback addresses for task ENIs.

Every task gets its own address in 127.0.0.0/8 (never 127.0.0.1), handed out upward from
127.1.0.1. Linux routes the whole /8 to `lo`, so each task can bind port 8786 and 8787 on
its own address. A freed address is only reused after `quarantine` seconds, so a client that
still holds an old task's address does not reach a newer task by accident.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable

FIRST = int(ipaddress.IPv4Address("127.1.0.0"))
LAST = int(ipaddress.IPv4Address("127.254.255.254"))


def _usable(value: int) -> bool:
    last_octet = value & 0xFF
    return last_octet not in (0, 255)


class AddressExhausted(RuntimeError):
    """No loopback address is free (every address is in use or quarantined)."""


class AddressPool:
    """Thread-safe allocator of loopback addresses with a reuse quarantine."""

    def __init__(
        self,
        quarantine: float = 30.0,
        first: str = "127.1.0.0",
        last: str = "127.254.255.254",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._quarantine = quarantine
        self._next = int(ipaddress.IPv4Address(first))
        self._last = int(ipaddress.IPv4Address(last))
        self._clock = clock
        self._freed: deque[tuple[float, int]] = deque()
        self._in_use: set[int] = set()
        self._lock = threading.Lock()

    def allocate(self) -> str:
        with self._lock:
            now = self._clock()
            if self._freed and now - self._freed[0][0] >= self._quarantine:
                _, value = self._freed.popleft()
            else:
                value = self._fresh()
            self._in_use.add(value)
            return str(ipaddress.IPv4Address(value))

    def _fresh(self) -> int:
        while self._next <= self._last:
            value = self._next
            self._next += 1
            if _usable(value) and value not in self._in_use:
                return value
        raise AddressExhausted("no loopback address left for a new task")

    def release(self, address: str) -> None:
        value = int(ipaddress.IPv4Address(address))
        with self._lock:
            if value in self._in_use:
                self._in_use.discard(value)
                self._freed.append((self._clock(), value))

    def in_use(self) -> set[str]:
        with self._lock:
            return {str(ipaddress.IPv4Address(v)) for v in self._in_use}
