"""FargateCluster and ECSCluster: `distributed` cluster managers driving the engine.

The engine's `reconcile` (blocking boto3) always runs in a worker thread, never on the event
loop; the cluster only decides how many workers it wants (scale, adapt) and which ones to
stop first (adapt retires exactly the workers Dask picked). Deletion goes through
`cleanup.Teardown`, which needs no event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError
from distributed.core import Status, rpc
from distributed.deploy.cluster import Cluster
from distributed.security import Security
from distributed.utils import Log, Logs

from dask_aws.aws import tls_secret
from dask_aws.aws.clients import Aws, connect
from dask_aws.aws.found import Target
from dask_aws.cluster import cleanup, config, follow, liveness, options, reach
from dask_aws.cluster import logs as cloudwatch
from dask_aws.cluster.progress import Progress
from dask_aws.engine.memory import DRIFT_SECONDS, Memory
from dask_aws.engine.orphans import KnownTasks
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.engine.scheduler_api import host_of
from dask_aws.errors import DaskAwsError, PermanentError, translate
from dask_aws.names import Owner
from dask_aws.status import ClusterStatus

logger = logging.getLogger(__name__)
PLACEHOLDER = "dask-aws-pending-"  # a requested worker that has not connected yet
CONNECT_TIMEOUT = 60.0
FOLLOW_INTERVAL = 2.0  # keeper rounds while the scheduler is replaced or unheard
KEEPER_STOP_TIMEOUT = 10.0
YOUR_IDENTITY = "your AWS identity"  # whom an AccessDenied asks to be granted the action


class ClusterStartError(Exception):
    """The cluster could not start; what it had created is deleted again."""


class ECSCluster(Cluster):
    """A Dask cluster on Amazon ECS: on an existing ECS cluster (`cluster_arn`) with the EC2
    launch type (GPUs: `worker_gpu`), or on Fargate with fargate_scheduler/fargate_workers.

    Takes dask-cloudprovider's keyword arguments (see `dask_aws.cluster.options`); defaults
    come from the `dask_aws` section of dask.config. Everything it creates is deleted on
    close(), on garbage collection, at interpreter exit and on SIGTERM/SIGHUP.
    """

    _kind = options.ECS_KIND

    def __init__(
        self,
        *,
        asynchronous: bool = False,
        loop: Any = None,
        quiet: bool = False,
        **kwargs: Any,
    ) -> None:
        self._options = options.build(self._kind, kwargs)  # no AWS call before this passes
        uid = str(uuid.uuid4())
        name = self._options.name or uid[:8]  # resources: dask-<name>-<hash>
        super().__init__(asynchronous=asynchronous, loop=loop, quiet=quiet, name=name)
        spec = self._options.spec
        owner = Owner(uid, name, kind=self._kind, labels=liveness.labels(spec.cluster_arn))
        self._target = Target(owner, spec)
        kw = self._options.session_kwargs
        session = boto3.Session(**kw) if kw else None  # type: ignore[arg-type]
        self._aws: Aws = connect(self._options.region, session, identity=YOUR_IDENTITY)
        self._desired = self._options.n_workers
        # Named worker groups' counts where scale(n, group=...) changed them.
        self._group_desired: dict[str, int] = {}
        self._retire_first: set[str] = set()
        self._worker_addresses: dict[str, str] = {}  # worker name -> address
        self._aws_status: ClusterStatus | None = None
        drift = config.seconds("drift-period") or DRIFT_SECONDS
        self._memory = Memory(drift, new_owner=True)  # the uid above is new
        self._keeper: asyncio.Future[None] | None = None
        self._wake: asyncio.Event | None = None
        # Every resource is created with a first heartbeat (liveness.labels): the next is due
        # one interval from now, not in the first round.
        self._next_beat = time.monotonic() + _heartbeat_interval()
        self._last_error: str | None = None
        self._closing_task: asyncio.Future[None] | None = None
        self._follower = follow.Follower()
        self._progress = Progress(self._say)
        timeout = config.seconds("cleanup-timeout") or 300.0
        self._teardown = cleanup.Teardown(self._aws, self._target, timeout, touched=False)
        self._teardown.registered_workers = _registered_workers(weakref.ref(self))
        self._finalizer = cleanup.register(self, self._teardown)
        if not self.called_from_running_loop:
            self._loop_runner.start()
            try:
                self.sync(self._start)
            except BaseException:
                self._teardown.closing = True
                with contextlib.suppress(Exception):
                    self.sync(self._close)
                self._loop_runner.stop()
                raise

    # -- identity ------------------------------------------------------------------------------
    @property
    def uid(self) -> str:
        return self._target.owner.uid

    @property
    def aws_status(self) -> ClusterStatus | None:
        """The engine's last view: ARNs, worker counts, conditions."""
        return self._aws_status

    @property
    def hourly_usd(self) -> Decimal:
        """What the cluster's running tasks cost per hour, in US dollars: an estimate from
        AWS's Fargate list prices (dask_aws/cost.py names the source), 0 before it runs."""
        status = self._aws_status
        return Decimal(status.cost.hourly_usd) if status and status.cost else Decimal(0)

    @property
    def dashboard_link(self) -> str:
        """distributed names the scheme from this process's dashboard settings; the
        scheduler serves HTTPS when the cluster speaks TLS."""
        link = str(super().dashboard_link)
        if self._target.spec.tls.enabled and link.startswith("http://"):
            return "https://" + link.removeprefix("http://")
        return link

    def _say(self, line: str) -> None:
        if self.status in (Status.created, Status.starting):
            self._log(line)
        else:
            self._cluster_manager_logs.append((datetime.datetime.now(), line))
            logger.info("%s: %s", self.name, line)

    # -- start ---------------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, ECSCluster]:
        async def _() -> ECSCluster:
            if self.status == Status.created:
                await self._start()
            # Client(cluster) awaits the cluster, then connects to `scheduler_address`: while
            # the scheduler is replaced, that is still the lost one.
            limit = time.monotonic() + self._options.startup_timeout
            while self._follower.replacing and self.status == Status.running:
                if time.monotonic() > limit:
                    break
                await asyncio.sleep(0.2)
            return self

        return _().__await__()

    async def _start(self) -> None:
        if self.status != Status.created:
            return
        self.status = Status.starting
        self._wake = asyncio.Event()
        try:
            await self._bring_up()
            await self._connect()
            await super()._start()
        except BaseException:
            self._teardown.closing = True
            try:
                await self._close()
            except Exception as exc:  # keep the start error; say what is left behind
                self._say(str(exc))
            raise
        self._progress.say(f"ready: {self.dashboard_link or self.scheduler_address}")
        self._keeper = asyncio.ensure_future(_keep(weakref.ref(self)))

    async def _bring_up(self) -> None:
        spec = self._target.spec
        self._progress.say(
            f"creating {self._kind} {self.name} in {self._aws.region}: scheduler "
            f"{spec.scheduler.cpu} CPU units/{spec.scheduler.memory} MiB, {self._desired} "
            f"worker(s) {spec.workers.cpu}/{spec.workers.memory} MiB, image {spec.image}"
        )
        try:  # inside the VPC or from outside: whom the security group lets in
            self._target, line = await asyncio.to_thread(
                reach.prepare,
                self._aws,
                self._target,
                self._options.reach,
                self._options.cidrs_given,
            )
        except ClientError as exc:
            raise ClusterStartError(translate(exc, YOUR_IDENTITY).message) from None
        except DaskAwsError as exc:
            raise ClusterStartError(exc.message) from None
        self._teardown.target = self._target
        self._progress.say(line)
        deadline = time.monotonic() + self._options.startup_timeout
        while True:
            result = await self._step()
            if result is None:
                raise ClusterStartError(f"{self.name} was closed while starting")
            error = result.error
            if error is not None and (
                isinstance(error, PermanentError) or error.reason == "AccessDenied"
            ):
                raise ClusterStartError(error.message)
            if result.ready:
                if result.status.cost is not None:
                    self._progress.say(
                        f"running: about ${self.hourly_usd:.4f}/hour at this size (an "
                        "estimate from Fargate list prices; cluster.hourly_usd)"
                    )
                return
            if time.monotonic() > deadline:
                why = error.message if error else result.status.message or "still starting"
                raise ClusterStartError(
                    f"{self.name} was not ready after {self._options.startup_timeout:.0f}s "
                    f"(startup_timeout): {why}"
                )
            await self._pause(result.requeue_after or 2.0)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once for scale() or close()."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _address(self, status: ClusterStatus) -> str:
        """Where this process reaches the scheduler: its public IP when it has one."""
        assert status.scheduler_address is not None
        address = status.scheduler_address
        if self._target.spec.network.assign_public_ip:
            public = await asyncio.to_thread(reach.public_address, self._aws, self._target, status)
            address = public or address
        return address

    async def _connect(self) -> None:
        status = self._aws_status
        assert status is not None and status.scheduler_address is not None
        address = await self._address(status)
        self._follower.task_arn = status.aws.scheduler_task_arn
        self._progress.say(f"connecting to the scheduler at {address}")
        self.security = await asyncio.to_thread(self._client_security, status)
        args = self.security.get_connection_args("client")
        comm = rpc(address, connection_args=args)
        self.scheduler_comm = comm
        try:
            await asyncio.wait_for(comm.identity(), timeout=CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise ClusterStartError(reach.unreachable(self._target, address, exc)) from None

    def _client_security(self, status: ClusterStatus) -> Security:
        """The cluster's client certificate (issued with the cluster, held in memory), which
        `Client(cluster)` uses; plain tcp:// needs none."""
        arn = status.aws.tls_secret_arn
        if not arn:
            return Security()
        try:
            return tls_secret.bundle(self._aws, arn).client_security()
        except ClientError as exc:
            raise ClusterStartError(translate(exc, YOUR_IDENTITY).message) from None

    # -- reconcile -----------------------------------------------------------------------------
    async def _step(self) -> Result | None:
        retire = frozenset(self._retire_first)
        result = await asyncio.to_thread(self._reconcile, self._desired, retire)
        if result is None:
            return None
        seen, found = self._memory.seen, result.status.aws
        if result.error is not None or seen is None:
            # A step that failed may have created what no record holds: then deletion looks.
            self._teardown.known, self._teardown.tasks = None, None
        else:
            self._teardown.known = list(found.created)
            self._teardown.tasks = (
                KnownTasks.of(found.cluster_arn, seen.live, found.scheduler_task_arn)
                if found.cluster_arn
                else None
            )
        if result.error is None:
            self._retire_first -= retire
            self._last_error = None
        self._aws_status = result.status
        self._progress.step(result)
        if self.status == Status.running:
            for line in await self._follower.step(
                self, result.status, self._address, self._options.startup_timeout
            ):
                self._progress.say(line)
        return result

    def _reconcile(self, desired: int, retire: frozenset[str]) -> Result | None:
        with self._teardown.lock:
            if self._teardown.closing:
                return None
            self._teardown.touched = True
            return reconcile(
                self._aws,
                self._target,
                previous=self._aws_status,
                desired_workers=desired,
                retire_first=retire,
                memory=self._memory,
                group_targets=dict(self._group_desired),
            )

    async def _tick(self) -> float:
        """One round of the keeper: converge, heartbeat, idle check; returns the next delay."""
        interval = config.seconds("reconcile-interval") or 30.0
        result = await self._step()
        if result is None:
            return interval
        if result.error is not None and result.error.message != self._last_error:
            self._last_error = result.error.message
            logger.warning("%s: %s", self.name, result.error.message)
        if time.monotonic() >= self._next_beat and self._aws_status is not None:
            self._next_beat = time.monotonic() + _heartbeat_interval()
            try:
                await asyncio.to_thread(liveness.beat, self._aws, self._target, self._aws_status)
            except Exception as exc:
                if isinstance(exc, RuntimeError) and "shutdown" in str(exc):
                    raise  # the interpreter is exiting
                logger.warning("%s: could not refresh the heartbeat tag: %s", self.name, exc)
        # Until the scheduler answers again, check often, and do not ask it whether it is idle
        # (its comm would retry the lost address for the connect timeout).
        following = self._follower.replacing or not self._follower.watching(self)
        timeout = self._target.spec.scheduler.idle_timeout_seconds
        if timeout and not following and await self._idle_for() > timeout:
            self._say(f"idle for more than {timeout}s (scheduler_timeout): closing")
            self._closing_task = asyncio.ensure_future(self._close())
            return interval
        if following:
            return min(interval, FOLLOW_INTERVAL)
        return interval if result.ready else (result.requeue_after or 2.0)

    async def _idle_for(self) -> float:
        try:
            comm: Any = self.scheduler_comm
            since = await comm.check_idle()
        except Exception:
            return 0.0
        return 0.0 if since is None else max(0.0, time.time() - float(since))

    def _poke(self) -> None:
        wake = self._wake
        if wake is not None:
            loop: Any = self.loop
            loop.add_callback(wake.set)

    # -- scaling -------------------------------------------------------------------------------
    def scale(self, n: int, group: str | None = None) -> None:
        """Ask for `n` workers (of the named worker group `group`, else the default ones);
        scale-down retires workers gracefully through the scheduler."""
        if group:
            if group not in self._target.spec.group_names:
                names = ", ".join(self._target.spec.group_names[1:]) or "none"
                raise ValueError(f"group={group!r}: no such worker group (the groups: {names})")
            self._group_desired[group] = max(0, int(n))
        else:
            self._desired = max(0, int(n))
        self._poke()

    def scale_up(self, n: int) -> None:
        self.scale(n)

    def scale_down(self, workers: Iterable[Any]) -> None:
        """Remove these workers (names or addresses; Adaptive has already retired them)."""
        names = [str(w) for w in workers]
        for name in names:
            if name.startswith(PLACEHOLDER):
                continue
            host = host_of(self._worker_addresses.get(name, name))
            if host:
                self._retire_first.add(host)
        self._desired = max(0, self._desired - len(names))
        self._poke()

    @property
    def observed(self) -> set[str]:
        return {str(d["name"]) for d in self.scheduler_info["workers"].values()}

    @property
    def plan(self) -> set[str]:
        present = sorted(self.observed)[: self._desired]
        return set(present) | {f"{PLACEHOLDER}{i}" for i in range(self._desired - len(present))}

    @property
    def requested(self) -> set[str]:
        return self.plan

    async def _watch_worker_status(self, comm: Any) -> None:
        await super()._watch_worker_status(comm)
        # The scheduler hung up. If its task is gone, the engine starts a new one: reconcile
        # now rather than at the next round, so that the Clients are held in time.
        if self.status == Status.running:
            self._poke()

    def _update_worker_status(self, op: str, msg: Any) -> None:
        if op == "add":
            for address, info in msg.get("workers", {}).items():
                self._worker_addresses[str(info.get("name", address))] = address
        super()._update_worker_status(op, msg)
        if op == "remove" and self.status == Status.running:
            # A worker left, e.g. a Spot worker that handed its data over: if its task is
            # stopping, start the replacement now rather than at the next round.
            self._poke()

    # -- logs ----------------------------------------------------------------------------------
    async def _get_logs(
        self, cluster: bool = True, scheduler: bool = True, workers: Any = True
    ) -> Logs:
        logs = Logs()
        if cluster:
            logs["Cluster"] = Log("\n".join(line for _, line in self._cluster_manager_logs))
        status = self._aws_status
        if status is None or not status.aws.cluster_arn or not (scheduler or workers):
            return logs
        addresses = cloudwatch.addresses_by_ip(self.scheduler_info["workers"])
        texts = await asyncio.to_thread(
            cloudwatch.read,
            self._aws,
            self._target,
            status.aws.cluster_arn,
            addresses,
            bool(scheduler),
            bool(workers),
        )
        wanted = None if workers is True or not workers else {str(w) for w in workers}
        for key, text in texts.items():
            if key == "Scheduler" or wanted is None or key in wanted:
                logs[key] = Log(text)
        return logs

    # -- close ---------------------------------------------------------------------------------
    async def _close(self) -> None:
        if self.status == Status.closed:
            return
        if self._wake is not None:
            self._wake.set()  # a start in progress stops waiting and sees the close
        self.status = Status.closing  # the keeper stops at its next check, whatever it awaits
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not asyncio.current_task():
            keeper.cancel()  # distributed's comms may swallow this; hence the status, and:
            await asyncio.wait([keeper], timeout=KEEPER_STOP_TIMEOUT)
        await follow.release(self)  # Clients waiting for a scheduler that will not come
        await super()._close()
        touched = self._teardown.touched
        if touched:
            self._progress.say(f"deleting the AWS resources of {self.name}")
        await asyncio.to_thread(self._teardown)
        self._finalizer.detach()
        if touched:
            self._progress.say("deleted")

    def close(self, timeout: float | None = None) -> Awaitable[None] | None:
        result: Awaitable[None] | None = super().close(timeout)
        if not self.asynchronous:
            self._loop_runner.stop()
        return result


class FargateCluster(ECSCluster):
    """A Dask cluster on AWS Fargate: creates (and deletes) its ECS cluster, roles, security
    group, log group and task definitions, or uses the ones you name.

    >>> cluster = FargateCluster(n_workers=4)
    >>> client = Client(cluster)
    """

    _kind = options.FARGATE_KIND


async def _keep(ref: weakref.ref[ECSCluster]) -> None:
    """Keep a running cluster converged; holds the cluster only weakly between rounds, so an
    abandoned cluster can still be garbage collected (and its resources deleted)."""
    delay = 0.0
    while True:
        cluster = ref()
        if cluster is None or cluster.status != Status.running or cluster._wake is None:
            return
        wake = cluster._wake
        del cluster
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)
        wake.clear()
        cluster = ref()
        if cluster is None or cluster.status != Status.running or cluster._teardown.closing:
            return
        try:
            delay = await cluster._tick()
        except asyncio.CancelledError:
            raise
        except RuntimeError as exc:
            if "shutdown" in str(exc):
                return  # the interpreter is exiting; the exit finalizer deletes everything
            logger.warning("dask-aws: reconcile round failed", exc_info=True)
            delay = 30.0
        except Exception:
            logger.warning("dask-aws: reconcile round failed", exc_info=True)
            delay = 30.0
        del cluster


def _registered_workers(cluster: weakref.ref[ECSCluster]) -> Callable[[], int | None]:
    """How many workers the scheduler has registered, as the cluster last heard; None once
    the cluster is gone. A weak reference: the teardown must not keep the cluster alive."""

    def count() -> int | None:
        alive = cluster()
        return None if alive is None else len(alive.observed)

    return count


def _heartbeat_interval() -> float:
    return config.seconds("heartbeat-interval") or 60.0
