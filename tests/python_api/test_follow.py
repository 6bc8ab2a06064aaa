"""dask_aws.cluster.follow against the installed distributed, without AWS: in-process
schedulers and workers on 127.0.0.1 stand in for the lost and the replacement scheduler
tasks. These pin the Client internals follow.py relies on; tests/python_api/
test_failover.py runs the same move end to end with FargateCluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from distributed import Client, Scheduler, Worker
from distributed.core import Status, rpc
from distributed.deploy.cluster import Cluster
from tornado.ioloop import IOLoop

from dask_aws.cluster import follow
from dask_aws.status import AwsStatus, ClusterStatus

CLIENT_TIMEOUT = 2.0  # the Client's own reconnect gives up after this


class FakeCluster:
    """What `Client(cluster)` needs of a cluster object (see Client.__init__/_start)."""

    def __init__(self, address: str) -> None:
        self.scheduler_address = address
        self.status = Status.running
        self.loop = IOLoop.current()

    def __await__(self) -> Generator[Any, None, FakeCluster]:
        async def _() -> FakeCluster:
            return self

        return _().__await__()


@asynccontextmanager
async def scheduler_with_worker() -> AsyncIterator[Scheduler]:
    async with (
        Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler,
        Worker(scheduler.address, nthreads=1),
    ):
        yield scheduler


async def until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def inc(x: int) -> int:
    return x + 1


async def test_a_held_client_outlives_its_connect_timeout_and_moves_to_the_new_one() -> None:
    async with scheduler_with_worker() as first:
        cluster = FakeCluster(first.address)
        client = await Client(cluster, asynchronous=True, timeout=CLIENT_TIMEOUT)
        assert follow.clients(cluster) == [client]
        assert await client.submit(inc, 1) == 2
        lost = client.submit(inc, 10)
        await lost
    # The first scheduler is gone: the Client's own reconnect to it has begun.
    await until(lambda: client.status == "connecting")
    assert follow.hold(cluster) == 1
    assert follow.hold(cluster) == 0  # already held
    await asyncio.sleep(CLIENT_TIMEOUT + 1)
    assert client.status == "connecting"  # unheld, it would have closed itself by now
    assert lost.status == "cancelled"  # its result lived on the lost scheduler
    waiting = client.submit(inc, 20)  # buffered by the Client until it is connected
    async with scheduler_with_worker() as second:
        cluster.scheduler_address = second.address
        assert await follow.resume(cluster, second.address, timeout=10) == []
        assert client.status == "running"
        assert client.scheduler.address == second.address
        assert await asyncio.wait_for(waiting.result(), 10) == 21
        assert await client.submit(inc, 30) == 31
        await client.close()
    assert client.status == "closed"


async def test_a_client_that_missed_the_loss_is_moved_too() -> None:
    """A half-open connection: the old scheduler still answers, as a task that vanished
    without a reset would look until TCP gives up."""
    async with scheduler_with_worker() as first, scheduler_with_worker() as second:
        cluster = FakeCluster(first.address)
        client = await Client(cluster, asynchronous=True, timeout=CLIENT_TIMEOUT)
        assert await client.submit(inc, 1) == 2
        assert await follow.resume(cluster, second.address, timeout=10) == []
        await until(lambda: client.status == "running" and second.clients.get(client.id))
        assert client.scheduler.address == second.address
        assert await client.submit(inc, 2) == 3
        await client.close()


async def test_release_closes_held_clients_and_leaves_others_alone() -> None:
    async with scheduler_with_worker() as first:
        cluster = FakeCluster(first.address)
        other = FakeCluster(first.address)
        held = await Client(cluster, asynchronous=True, timeout=CLIENT_TIMEOUT)
        bystander = await Client(other, asynchronous=True, timeout=CLIENT_TIMEOUT)
    await until(lambda: held.status == "connecting")
    assert follow.hold(cluster) == 1
    assert await follow.release(cluster) == 1
    assert held.status == "closed"
    assert follow.clients(cluster) == []
    await bystander.close()


async def test_a_replacement_that_never_answers_closes_the_client_after_the_timeout() -> None:
    async with scheduler_with_worker() as first:
        cluster = FakeCluster(first.address)
        client = await Client(cluster, asynchronous=True, timeout=CLIENT_TIMEOUT)
        dead = first.address
    await until(lambda: client.status == "connecting")
    follow.hold(cluster)
    problems = await follow.resume(cluster, dead, timeout=1)
    assert len(problems) == 1 and "not connected" in problems[0]
    assert client.status == "closed"


class BareCluster(Cluster):
    """distributed's Cluster on an existing scheduler: what Follower moves."""

    def __init__(self, address: str) -> None:
        super().__init__(asynchronous=True)
        self.scheduler_comm = rpc(address)

    async def _start(self) -> None:
        await super()._start()


def status(arn: str, address: str | None) -> ClusterStatus:
    return ClusterStatus(scheduler_address=address, aws=AwsStatus(scheduler_task_arn=arn))


async def same(status: ClusterStatus) -> str:
    assert status.scheduler_address is not None
    return status.scheduler_address


# Subscribing again to the same scheduler replaces its "worker-status" plugin, with a
# warning from that scheduler (in process here, in its own task's log on AWS).
async def _followed(follower: follow.Follower, address: str) -> tuple[BareCluster, Client]:
    """A cluster on the scheduler at `address` (task "t1") and a Client made from it."""
    cluster = BareCluster(address)
    await cluster._start()
    follower.task_arn = "t1"
    client = await Client(cluster, asynchronous=True, timeout=CLIENT_TIMEOUT)
    return cluster, client


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")
async def test_the_follower_moves_cluster_and_clients_through_a_replacement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow, "ANSWER_TIMEOUT", 0.5)  # the lost scheduler refuses at once
    follower = follow.Follower()
    async with scheduler_with_worker() as first:
        cluster, client = await _followed(follower, first.address)
        assert await follower.step(cluster, status("t1", first.address), same, 60) == []
    await until(lambda: not follower.watching(cluster) and client.status == "connecting")
    # ECS still reports the old task: unheard only. The Client is held all the same.
    assert await follower.step(cluster, status("t1", first.address), same, 60) == []
    assert follower.down_since is not None and not follower.replacing
    await asyncio.sleep(CLIENT_TIMEOUT + 0.5)
    said = await follower.step(cluster, status("t2", None), same, 60)
    assert said and "the scheduler task is gone" in said[0]
    assert follower.replacing and client.status == "connecting"
    async with scheduler_with_worker() as second:
        said = await follower.step(cluster, status("t2", second.address), same, 60)
        assert said == [f"now connected to the new scheduler at {second.address}"]
        assert not follower.replacing and follower.task_arn == "t2"
        assert cluster.scheduler_address == second.address
        assert len(cluster.scheduler_info["workers"]) == 1
        assert client.status == "running" and await client.submit(inc, 1) == 2

        # Only the cluster's connection drops, the scheduler lives: it listens again.
        await cluster._watch_worker_status_comm.close()
        await until(lambda: not follower.watching(cluster))
        assert await follower.step(cluster, status("t2", second.address), same, 60) == []
        assert follower.watching(cluster) and follower.down_since is None
        await client.close()
        await cluster._close()


async def test_the_follower_closes_waiting_clients_after_the_wait_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow, "ANSWER_TIMEOUT", 0.5)
    follower = follow.Follower()
    async with scheduler_with_worker() as first:
        cluster, client = await _followed(follower, first.address)
    await until(lambda: client.status == "connecting")
    assert len(await follower.step(cluster, status("t2", None), same, 60)) == 1
    await asyncio.sleep(0.1)
    said = await follower.step(cluster, status("t2", None), same, 0.05)
    assert said and "closed the Clients that were waiting" in said[-1]
    assert client.status == "closed"
    await cluster._close()
