"""Keeping a running cluster, and the Clients made from it, on its current scheduler.

When the scheduler task stops, the engine starts a new one, at a new address. distributed's
Client reconnects by itself when its scheduler connection drops, but (distributed 2025-2026,
`Client._reconnect`) only to the address it holds (`client.scheduler.address`), in a single
connection attempt that retries that address for the Client's connect timeout
(`distributed.comm.timeouts.connect`, 30 s by default); then it closes for good. A Fargate
task takes longer than that to start, and comes up elsewhere.

`Follower` moves the cluster itself (its `scheduler_comm`, which `scheduler_address`,
adapt, `wait_for_workers` and `Client(cluster)` use, and its subscription to worker events)
once the new scheduler answers; the functions below move the Clients.

distributed has no public way to point a Client at another scheduler, so this module does
what the Client's own `_start` and `_reconnect` do, on the same attributes, and keeps every
such access in one place (tests/python_api/test_follow.py checks them against the installed
distributed without AWS):

- `hold`: while the cluster does not hear its scheduler (its task is gone, or only the
  connection dropped), the reconnect in progress in each such Client is cancelled, so that
  it cannot give up and close the Client. The Client stays "connecting": what it is asked
  to send meanwhile is buffered by the Client itself and sent once it is connected again.
- `resume`: once the new scheduler (or the same one, after a dropped connection) answers,
  each Client gets its address and connects, as `Client._start` does (connection, then its
  report loop).
- `release`: the cluster closes (or gave up waiting for a new scheduler): held Clients are
  closed, as distributed closes a Client whose cluster has closed.

Only Clients on the cluster's own event loop are touched (`Client(cluster)` uses it): their
state may only be changed from that loop. Any other Client keeps distributed's behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from distributed import Client
from distributed.core import rpc
from distributed.objects import SchedulerInfo
from distributed.security import Security

from dask_aws.status import ClusterStatus

logger = logging.getLogger(__name__)
RETRY = 0.1  # seconds between connection attempts, as in Client._reconnect
ANSWER_TIMEOUT = 5.0  # for a scheduler to answer; else the next round tries again
CLIENT_CONNECT_TIMEOUT = 60.0  # for each Client to connect to a scheduler that answered


class _ExpectedCancellations(logging.Filter):
    """distributed's `log_errors` around `Client._reconnect` logs any exception, a
    cancellation included, as an error with its traceback; the reconnects cancelled here
    are expected, so their record is dropped (only in the tasks cancelled here)."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            try:
                return asyncio.current_task() not in self.tasks
            except RuntimeError:  # no running loop
                return True
        return True


_expected = _ExpectedCancellations()
logging.getLogger("distributed.client").addFilter(_expected)


def _cancel(task: asyncio.Task[Any]) -> None:
    _expected.tasks.add(task)
    task.cancel()


def _every_client() -> list[Any]:
    """Every Client of this process (distributed keeps them in a WeakSet)."""
    for _ in range(3):
        try:
            return list(Client._instances)
        except RuntimeError:  # another thread made a Client during the copy: copy again
            continue
    return []


def clients(cluster: Any) -> list[Any]:
    """The open Clients made from `cluster`, on its event loop."""
    found = []
    loop = cluster.loop
    for client in _every_client():
        if getattr(client, "cluster", None) is not cluster:
            continue
        if getattr(client, "status", "closed") in ("closed", "closing", "newly-created"):
            continue
        if getattr(client, "loop", None) is not loop:
            continue
        found.append(client)
    return found


def _reconnecting(client: Any) -> bool:
    """The Client lost its scheduler and its report loop is trying to reconnect.

    `_handle_report` sets "connecting" and, in `_reconnect`, cancels the Client's futures
    and drops its comm before its first await: on this loop, "connecting" with the report
    task still running means exactly that. A Client still starting has no report task yet.
    """
    task = getattr(client, "_handle_report_task", None)
    return client.status == "connecting" and task is not None and not task.done()


def hold(cluster: Any) -> int:
    """Cancel the reconnects to the lost scheduler (they would close their Client after its
    connect timeout); returns how many were cancelled. Call it again while the replacement
    starts: a Client notices the loss when its own connection fails, which may be later."""
    held = 0
    for client in clients(cluster):
        if _reconnecting(client) and not client._handle_report_task.cancelling():
            # `_handle_report` ends quietly on cancellation (it catches CancelledError).
            _cancel(client._handle_report_task)
            held += 1
    return held


async def resume(cluster: Any, address: str, timeout: float) -> list[str]:
    """Connect the cluster's Clients to the scheduler at `address`; returns a line for each
    Client that could not be connected within `timeout` seconds (it is closed)."""
    problems = []
    for client in clients(cluster):
        try:
            if not await _resume(client, address, timeout):
                problems.append(f"{client.id}: not connected to {address} after {timeout:.0f}s")
        except Exception as exc:
            logger.warning("could not move %s to %s", client.id, address, exc_info=True)
            problems.append(f"{client.id}: {exc}")
            with contextlib.suppress(Exception):
                await client._close(fast=True)
    return problems


async def _resume(client: Any, address: str, timeout: float) -> bool:
    old = client.scheduler.address if client.scheduler is not None else None
    task = client._handle_report_task
    if client.status == "running":
        if old != address:
            # It has not noticed the loss yet (a half-open connection to a task that is
            # gone). Pointed at the new address, its own reconnect goes there once its comm
            # is closed.
            client.scheduler = client.rpc(address)
            if client.scheduler_comm is not None:
                client.scheduler_comm.abort()
        return True
    if client.status != "connecting" or task is None:
        return True  # closed meanwhile, or still in Client._start: distributed's own case
    if not task.done():
        _cancel(task)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if client.status != "connecting":
        return True
    # What Client._start does: the address to (re)connect to, then the connection.
    client.scheduler = client.rpc(address)
    if old is not None:
        client.rpc.remove(old)  # idle connections to the dead scheduler
    deadline = time.monotonic() + timeout
    while client.status == "connecting":
        left = deadline - time.monotonic()
        if left <= 0:
            await client._close(fast=True)
            return False
        with contextlib.suppress(OSError):  # TimeoutError included; refused: not up yet
            await client._ensure_connected(timeout=left)
        if client.status == "connecting":
            await asyncio.sleep(RETRY)
    if client.status != "running":
        return True  # closed meanwhile
    client._handle_report_task = asyncio.create_task(client._handle_report())
    return True


async def release(cluster: Any) -> int:
    """Close the Clients that are held or reconnecting: the cluster is closing, or its
    scheduler was not replaced in time, so there is nothing to connect to; returns how many
    were closed. (distributed closes a connected Client itself once its cluster closes.)"""
    closed = 0
    for client in clients(cluster):
        task = getattr(client, "_handle_report_task", None)
        if client.status != "connecting" or task is None:
            continue
        if not task.done():
            _cancel(task)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await client._close(fast=True)
        closed += 1
    return closed


class Follower:
    """The scheduler task a running cluster is connected to, and the move to the one that
    replaces it. Holds no reference to the cluster (it is passed in), so that an abandoned
    cluster is still garbage collected at once."""

    def __init__(self) -> None:
        self.task_arn: str | None = None  # the scheduler task the cluster's comms talk to
        self.replacing = False  # that task is gone; the engine starts another one
        self.down_since: float | None = None  # monotonic; None: the scheduler is heard

    def watching(self, cluster: Any) -> bool:
        """Whether the cluster still hears the scheduler's worker events."""
        task = cluster._watch_worker_status_task
        return task is None or not task.done()

    async def step(
        self,
        cluster: Any,
        status: ClusterStatus,
        address_of: Callable[[ClusterStatus], Awaitable[str]],
        wait_limit: float,
    ) -> list[str]:
        """After each reconcile round of a running cluster; returns lines to tell the user.
        `address_of`: where this process reaches a scheduler; `wait_limit`: seconds to hold
        Clients for the scheduler (then they are closed)."""
        arn = status.aws.scheduler_task_arn
        lost = arn != self.task_arn
        if not lost and self.watching(cluster):
            return []
        # Gone, or only unheard (a dropped connection; a task ECS has not seen stop yet): in
        # both cases the Clients' own reconnects may give up before it is back.
        hold(cluster)
        said = []
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        if lost and not self.replacing:
            self.replacing = True
            said.append(
                "the scheduler task is gone; the Clients made from this cluster wait for "
                "its replacement and then connect to it"
            )
        if lost and status.scheduler_address is not None:
            address = await address_of(status)
            if await self._switch(cluster, address):
                self.task_arn, lost = arn, False
                said.append(f"now connected to the new scheduler at {address}")
        elif not lost:
            with contextlib.suppress(OSError):  # TimeoutError included: the next round
                await asyncio.wait_for(subscribe(cluster), ANSWER_TIMEOUT)
        if not lost and self.watching(cluster):
            self.replacing, self.down_since = False, None
            problems = await resume(cluster, cluster.scheduler_address, CLIENT_CONNECT_TIMEOUT)
            said.extend(f"warning: {line}" for line in problems)
        elif now - self.down_since > wait_limit and await release(cluster):
            said.append(
                f"no scheduler to connect to after {wait_limit:.0f}s (startup_timeout): "
                "closed the Clients that were waiting for it"
            )
        return said

    async def _switch(self, cluster: Any, address: str) -> bool:
        """Point the cluster at the scheduler at `address`, once it answers."""
        security = getattr(cluster, "security", None) or Security()
        comm = rpc(address, connection_args=security.get_connection_args("client"))
        try:
            await asyncio.wait_for(comm.identity(), ANSWER_TIMEOUT)
        except OSError:  # TimeoutError included: not listening yet, the next round retries
            await comm.close_rpc()
            return False
        old, cluster.scheduler_comm = cluster.scheduler_comm, comm
        if old is not None:
            await old.close_rpc()
        with contextlib.suppress(OSError):  # then not `watching`: the next round retries
            await asyncio.wait_for(subscribe(cluster), ANSWER_TIMEOUT)
        return True


async def subscribe(cluster: Any) -> None:
    """Listen to the scheduler's worker events, as `Cluster._start` does (the cluster's
    `scheduler_info`, its `observed` workers, the dashboard link)."""
    comm = await cluster.scheduler_comm.live_comm()
    comm.name = "Cluster worker status"
    await comm.write({"op": "subscribe_worker_status"})
    cluster.scheduler_info = SchedulerInfo(await comm.read())
    cluster._watch_worker_status_comm = comm
    cluster._watch_worker_status_task = asyncio.ensure_future(cluster._watch_worker_status(comm))
