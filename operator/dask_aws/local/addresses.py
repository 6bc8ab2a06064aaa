"""Loopback addresses for task ENIs.

Every task gets its own address in 127.0.0.0/8 (never 127.0.0.1), handed out upward from
127.1.0.1. Linux routes the whole /8 to `lo`, so each task can bind port 8786 and 8787 on
its own address. A freed address is only reused after `quarantine` seconds, so a client that
still holds an old task's address does not reach a newer task by accident. In process mode an
address whose Dask ports are already taken (another local AWS on the same machine, a leftover
process) is skipped; `LocalAws` also starts each server at a random 127.N.0.0 block.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

FIRST = int(ipaddress.IPv4Address("127.1.0.0"))
LAST = int(ipaddress.IPv4Address("127.254.255.254"))


def _usable(value: int) -> bool:
    last_octet = value & 0xFF
    return last_octet not in (0, 255)


def ports_free(address: str, ports: tuple[int, ...] = (8786, 8787)) -> bool:
    """Whether nothing listens on `ports` of `address` (another local AWS, a leftover)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def random_base() -> str:
    """A random 127.N.0.0 block (N in 2..250), so concurrent servers rarely overlap."""
    return f"127.{random.randint(2, 250)}.0.0"


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

    def allocate(self, usable: Callable[[str], bool] | None = None) -> str:
        """The next address; `usable` may veto one (e.g. a port on it is taken)."""
        with self._lock:
            for _ in range(1000):
                now = self._clock()
                if self._freed and now - self._freed[0][0] >= self._quarantine:
                    _, value = self._freed.popleft()
                else:
                    value = self._fresh()
                address = str(ipaddress.IPv4Address(value))
                if usable is None or usable(address):
                    self._in_use.add(value)
                    return address
            raise AddressExhausted("no usable loopback address found")

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
