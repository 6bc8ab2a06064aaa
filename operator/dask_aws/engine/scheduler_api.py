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
import functools
import inspect
import ipaddress
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dask_aws.engine import demand_probe
from dask_aws.engine.demand import Demand

# distributed (with numpy) is about 30 MiB of an operator's memory, and only clusters that
# autoscale, idle out or retire workers talk to their scheduler: it is imported on the
# first call, not with the operator.
if TYPE_CHECKING:
    from distributed.security import Security

TIMEOUT = 10.0
RETIRE_TIMEOUT = 120.0  # retiring moves the workers' data to others first


class SchedulerUnreachable(Exception):
    pass


class DemandUnavailable(SchedulerUnreachable):
    """The scheduler answers but does not run the demand probe (run_function blocked by
    distributed.scheduler.blocked-handlers, or it failed there): use adaptive_target."""


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
    from distributed.comm.core import connect
    from distributed.core import send_recv

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


def demand(endpoint: Endpoint) -> Demand:
    """The adaptive target and the work by resource restriction, in one snapshot.

    Raises DemandUnavailable (a SchedulerUnreachable) when the scheduler will not run the
    probe: then adaptive_target alone is the answer (Demand.total_only)."""
    try:
        reply = _call(
            endpoint,
            "run_function",
            function=probe_function(),
            args=_pickled(()),
            kwargs=_pickled({}),
            wait=True,
            # The reply as msgpack: a payload of counts needs no pickle to read.
            serializers=["msgpack"],
        )
    except SchedulerUnreachable as exc:
        if isinstance(exc.__cause__, ValueError):  # e.g. the handler is blocked
            raise DemandUnavailable(str(exc)) from exc
        raise
    except Exception as exc:  # the scheduler raised, e.g. an old one lacks an attribute
        raise DemandUnavailable(f"{endpoint}: {exc!r}") from exc
    if not isinstance(reply, dict) or reply.get("status") != "OK":
        text = reply.get("exception_text", reply) if isinstance(reply, dict) else reply
        raise DemandUnavailable(f"{endpoint}: the demand probe failed: {text}")
    try:
        return Demand.from_wire(reply["result"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DemandUnavailable(f"{endpoint}: unexpected demand reply: {exc!r}") from exc


class _Defined:
    """Unpickles as the function `name` defined by `source`, compiled where it is
    unpickled: a pickled code object would load only on the Python version that made it,
    and the scheduler image's Python is the user's choice. (run_function runs whatever it
    is sent anyway; this only decides where the code is compiled.)"""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        namespace = {"__name__": "dask_aws_" + self.name}
        define = f"(lambda ns: (exec({self.source!r}, ns), ns[{self.name!r}])[1])({namespace!r})"
        return eval, (define,)


@functools.cache
def probe_function() -> bytes:
    """demand_probe.probe, pickled so that the scheduler needs no dask_aws to run it."""
    return _pickled(_Defined(inspect.getsource(demand_probe), "probe"))


def _pickled(value: object) -> bytes:
    """As Client.run_on_scheduler pickles what it sends (distributed's pickle)."""
    from distributed.protocol.pickle import dumps

    return bytes(dumps(value))  # type: ignore[no-untyped-call]
