"""The Dask scheduler's RPC, spoken as a client: over tls:// with the cluster's client
certificate, or tcp:// for clusters that opted out of TLS.

Not the scheduler's HTTP API: distributed's HTTP server does not check client
certificates, so its `/api/v1` (retire_workers and friends) would let anyone who reaches
the dashboard port act on the cluster. The task definitions leave it off.

Callers run in worker threads (never on kopf's or a cluster's event loop): each call opens
one connection on a private event loop and closes it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from distributed.comm.core import connect
from distributed.core import send_recv
from distributed.security import Security

TIMEOUT = 10.0
RETIRE_TIMEOUT = 120.0  # retiring moves the workers' data to others first


class SchedulerUnreachable(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    address: str  # tls://ip:port or tcp://ip:port
    security: Security | None = None  # None: plain tcp://

    def __str__(self) -> str:
        return self.address


def _call(endpoint: Endpoint, op: str, timeout: float = TIMEOUT, **kwargs: Any) -> Any:
    if os.environ.get("DASK_AWS_LOOPBACK_ONLY") == "1" and not _loopback(endpoint.address):
        # Tests and the local AWS must never send traffic off this machine.
        raise SchedulerUnreachable(f"{endpoint}: not a loopback address (DASK_AWS_LOOPBACK_ONLY=1)")
    security = endpoint.security

    async def call() -> Any:
        args = security.get_connection_args("client") if security else {}  # type: ignore[no-untyped-call]
        comm = await connect(endpoint.address, timeout=min(timeout, TIMEOUT), **args)  # type: ignore[no-untyped-call]
        try:
            return await asyncio.wait_for(send_recv(comm, op=op, reply=True, **kwargs), timeout)
        finally:
            comm.abort()

    try:
        return asyncio.run(call())
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnreachable(f"{endpoint}: {exc}") from exc


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(host_of(address)).is_loopback
    except ValueError:
        return host_of(address) == "localhost"


def host_of(address: str) -> str:
    return urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""


def worker_addresses(endpoint: Endpoint) -> list[str]:
    reply = _call(endpoint, "identity")
    return list(reply.get("workers", {}))


def retire_workers(endpoint: Endpoint, addresses: list[str]) -> None:
    if addresses:
        _call(endpoint, "retire_workers", timeout=RETIRE_TIMEOUT, workers=addresses)


def adaptive_target(endpoint: Endpoint) -> int:
    return int(_call(endpoint, "adaptive_target"))


def idle_since(endpoint: Endpoint) -> float | None:
    value = _call(endpoint, "check_idle")
    return None if value is None else float(value)
