"""The data plane: what Fargate does with a task once RunTask has accepted it.

Process mode runs each container as a local process group bound to the task's loopback
address; simulated mode runs nothing and only moves the task through its states. Status
follows ECS: PROVISIONING (RunTask reply) -> PENDING -> RUNNING (processes started) ->
DEACTIVATING/STOPPING -> DEPROVISIONING -> STOPPED, with stopCode, stoppedReason, exit codes
and timestamps. StopTask sends SIGTERM to every container's main process and SIGKILL to its
whole process group after the container's `stopTimeout` (default: the server's
`stop_timeout`), as `docker stop` does (local/stopping.py). A Spot interruption
(`kill(arn, spot=True)`) does the same with stopCode SpotInterruption, the task staying
RUNNING (desiredStatus STOPPED) until its containers have exited. Tasks RunTask placed on a
container instance (EC2 launch type, local/fleet.py) give their CPU, memory and GPUs back
when they reach STOPPED.

With a latency profile (local/latency.py) a task stays PROVISIONING (ENI attachment
PRECREATED), then PENDING (ENI ATTACHED, image "pulling") for drawn durations before its
processes start; one timer thread serves every waiting task, and StopTask during the wait
stops the task at once, without it ever running.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask_aws.local import egress, fleet, specs, stopping, taskstate
from dask_aws.local.addresses import AddressPool, ports_free
from dask_aws.local.agent import TaskAgent
from dask_aws.local.context import LocalContext
from dask_aws.local.latency import Delays, LatencyProfile, Timers
from dask_aws.local.logs import LogConfigError, LogShipper, LogSink
from dask_aws.local.processes import ContainerProcess, ContainerStartError
from dask_aws.local.reaper import Reaper
from dask_aws.local.secrets import SecretResolutionError, resolve_secret

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.1
FINAL = "STOPPED"


@dataclass
class TaskRuntime:
    task: Any
    task_def: Any
    ip: str
    eni_id: str | None
    account: str
    region: str
    cluster: str
    launch_type: str
    workdir: Path
    processes: dict[str, ContainerProcess] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    sinks: dict[str, LogSink] = field(default_factory=dict)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stop_code: str | None = None
    stop_reason: str | None = None
    stop_timeout_override: float | None = None
    start_failure: str | None = None
    # The latency profile's waits (None: starts at once); `waiting` while in them.
    delays: Delays | None = None
    waiting: bool = False

    @property
    def arn(self) -> str:
        return str(self.task.task_arn)

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def definitions(self) -> list[dict[str, Any]]:
        return list(self.task_def.container_definitions)

    def essential(self, name: str) -> bool:
        for definition in self.definitions():
            if definition.get("name") == name:
                return bool(definition.get("essential", True))
        return True

    def container(self, name: str) -> Any:
        for container in self.task.containers:
            if container.name == name:
                return container
        return None

    def request_stop(self, code: str, reason: str | None) -> None:
        if self.stop_code is None:
            self.stop_code = code
            self.stop_reason = reason or taskstate.STOP_REASONS.get(code, code)
        self.stop_requested.set()


class DataPlane:
    def __init__(
        self,
        context: LocalContext,
        account: str,
        simulated: bool,
        stop_timeout: float,
        workdir: Path,
        address_quarantine: float = 30.0,
        logs: LogShipper | None = None,
        address_base: str = "127.1.0.0",
        agent: TaskAgent | None = None,
        reaper: Reaper | None = None,
        latency: LatencyProfile | None = None,
    ) -> None:
        self.context = context
        self.latency = latency or LatencyProfile()
        self.timers = Timers()
        self._adopted = 0
        self.account = account
        self.simulated = simulated
        self.stop_timeout = stop_timeout
        self.workdir = workdir
        self.addresses = AddressPool(quarantine=address_quarantine, first=address_base)
        self.logs = logs
        self.agent = agent
        # Told of every process group, so that they die with the server however it dies.
        self.reaper = reaper
        self.runtimes: dict[str, TaskRuntime] = {}
        self.by_id: dict[str, str] = {}
        # (cluster ARN, RunTask clientToken) -> (the request it answered, the task ARNs it
        # created); the ARN names the account, so accounts never share a token.
        self.client_tokens: dict[tuple[str, str], tuple[str, list[str]]] = {}
        self._threads: list[threading.Thread] = []
        self._closing = False

    # -- called from the moto patches, with the shared lock held ----------------------------
    def adopt(self, task: Any, task_def: Any, ec2_backend: Any) -> TaskRuntime:
        """A task RunTask just created: loopback address, containers, PROVISIONING."""
        # The data plane owns this task's status: whatever the state manager is set to
        # (e.g. over /moto-api/state-manager), moto never moves it on its own.
        task._transitions = []
        ip = self.addresses.allocate(None if self.simulated else ports_free)
        attachment_id, eni_id = taskstate.assign_address(task, ec2_backend, ip)
        if egress.public_ip(task):
            # The task's "public" IP is its loopback address too: the only one a client
            # here can reach (moto itself gives ECS tasks none).
            taskstate.assign_public_address(ec2_backend, eni_id, ip)
        taskstate.build_containers(task, task_def, ip, attachment_id)
        if task.capacity_provider_name in ("FARGATE", "FARGATE_SPOT") and not task.launch_type:
            task.launch_type = "FARGATE"
        if task.launch_type == "FARGATE":
            task.platform_version = task.platform_version or "1.4.0"
            task.platform_family = "Linux"
        task.cpu = task_def.cpu
        task.memory = task_def.memory
        task.created_at = None
        taskstate.stamp(task, "created_at")
        task.desired_status = "RUNNING"
        task.stop_code = None
        task.connectivity = None
        task.health_status = "UNKNOWN"
        taskstate.set_status(task, "PROVISIONING")
        runtime = TaskRuntime(
            task=task,
            task_def=task_def,
            ip=ip,
            eni_id=eni_id,
            # The account whose credentials ran the task (moto: the backend's account).
            account=str(getattr(task, "_account_id", None) or self.account),
            region=task.region_name,
            cluster=task.cluster_name,
            launch_type=task.launch_type or "",
            workdir=self.workdir / task.task_arn.rsplit("/", 1)[-1],
        )
        self._adopted += 1
        runtime.delays = self.latency.delays(self._adopted)
        self.runtimes[runtime.arn] = runtime
        self.by_id[runtime.task_id] = runtime.arn
        self.context.after_response(lambda: self.launch(runtime))
        return runtime

    def stop(self, task_arn: str, code: str = "UserInitiated", reason: str | None = None) -> None:
        runtime = self.runtimes.get(task_arn)
        if runtime is None or runtime.done.is_set():
            return
        runtime.request_stop(code, reason)
        task = runtime.task
        task.desired_status = "STOPPED"
        taskstate.stamp(task, "stopping_at")
        task.stop_code = runtime.stop_code
        task.stopped_reason = runtime.stop_reason
        if runtime.waiting:
            # PROVISIONING or PENDING under the latency profile: nothing runs yet.
            runtime.waiting = False
            self._finish(runtime)
        elif self.simulated:
            exit_code = 137 if code == "EssentialContainerExited" else 0
            for container in task.containers:
                runtime.exit_codes.setdefault(container.name, exit_code)
            self._finish(runtime)
        elif task.last_status == "RUNNING" and code != "SpotInterruption":
            taskstate.set_status(task, "DEACTIVATING")

    # -- fault injection ---------------------------------------------------------------------
    def kill(self, task_arn: str, spot: bool = False) -> None:
        """Crash the task (exit 137, EssentialContainerExited) or interrupt it as Spot."""
        with self.context.lock:
            runtime = self.runtimes.get(task_arn) or self._runtime_by_ref(task_arn)
            if runtime is None:
                raise KeyError(f"unknown task {task_arn}")
            if runtime.done.is_set():
                return
            if spot:
                # Each container keeps its own stopTimeout (Fargate: at most 120 s).
                self.stop(runtime.arn, "SpotInterruption")
                return
            target = next(
                (c["name"] for c in runtime.definitions() if c.get("essential", True)), None
            )
            process = runtime.processes.get(target) if target else None
            if self.simulated or process is None:
                if target:
                    runtime.exit_codes.setdefault(target, 137)
                self.stop(runtime.arn, "EssentialContainerExited")
                return
        process.signal(signal.SIGKILL)

    def _runtime_by_ref(self, ref: str) -> TaskRuntime | None:
        arn = self.by_id.get(ref.rsplit("/", 1)[-1])
        return self.runtimes.get(arn) if arn else None

    def lookup(self, ref: str) -> TaskRuntime | None:
        return self.runtimes.get(ref) or self._runtime_by_ref(ref)

    # -- lifecycle ---------------------------------------------------------------------------
    def launch(self, runtime: TaskRuntime) -> None:
        delays = runtime.delays
        if delays is not None and not self._closing:
            with self.context.lock:
                wait = not (runtime.stop_requested.is_set() or runtime.done.is_set())
                runtime.waiting = wait
            if wait:
                self.timers.call_later(delays.provisioning, lambda: self._provisioned(runtime))
                return
        self._launch_now(runtime)

    def _provisioned(self, runtime: TaskRuntime) -> None:
        """The ENI is attached: PENDING (image pull) for the drawn time."""
        assert runtime.delays is not None
        with self.context.lock:
            if not runtime.waiting:
                return
            task = runtime.task
            taskstate.attach_eni(task)
            task.connectivity = "CONNECTED"
            taskstate.stamp(task, "connectivity_at")
            taskstate.set_status(task, "PENDING")
            taskstate.stamp(task, "pull_started_at")
        self.timers.call_later(runtime.delays.pending, lambda: self._pulled(runtime))

    def _pulled(self, runtime: TaskRuntime) -> None:
        with self.context.lock:
            if not runtime.waiting:
                return
            runtime.waiting = False
        self._launch_now(runtime)

    def _launch_now(self, runtime: TaskRuntime) -> None:
        if self._closing:
            with self.context.lock:
                runtime.request_stop("UserInitiated", "Local AWS shutting down")
                self._finish(runtime)
            return
        if self.simulated:
            with self.context.lock:
                if runtime.stop_requested.is_set():
                    return
                taskstate.attach_eni(runtime.task)  # as at PENDING, where a pull can fail
                reason = self._cannot_get_out(runtime)
                if reason is not None:
                    runtime.start_failure = reason
                    runtime.request_stop("TaskFailedToStart", reason)
                    self._finish(runtime)
                    return
                self._set_running(runtime)
            return
        thread = threading.Thread(
            target=self._supervise, args=(runtime,), name=f"task-{runtime.task_id}", daemon=True
        )
        with self.context.lock:  # launched from request threads and the latency timers
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _set_running(self, runtime: TaskRuntime) -> None:
        task = runtime.task
        for stamp_field in ("pull_started_at", "pull_stopped_at", "started_at", "connectivity_at"):
            taskstate.stamp(task, stamp_field)
        task.connectivity = "CONNECTED"  # its ENI was attached at PENDING, which it passed
        for container in task.containers:
            if container.name in runtime.processes or self.simulated:
                taskstate.set_container(container, "RUNNING")
                process = runtime.processes.get(container.name)
                if process is not None:
                    container.runtime_id = f"{runtime.task_id}-{process.pid}"
        taskstate.set_status(task, "RUNNING")

    def _supervise(self, runtime: TaskRuntime) -> None:
        try:
            if self._start(runtime):
                self._watch(runtime)
        except Exception as exc:
            logger.exception("task %s failed", runtime.arn)
            with self.context.lock:
                runtime.request_stop("TaskFailedToStart", f"InternalError: {exc}")
        finally:
            try:
                self._stop_processes(runtime)
            finally:
                with self.context.lock:
                    self._finish(runtime)

    def _start(self, runtime: TaskRuntime) -> bool:
        task = runtime.task
        with self.context.lock:
            if runtime.stop_requested.is_set():
                return False
            if task.last_status != "PENDING":
                taskstate.set_status(task, "PENDING")
                taskstate.attach_eni(task)  # PENDING is the image pull, on an attached ENI
            taskstate.stamp(task, "pull_started_at")
            reason = self._cannot_get_out(runtime)
            if reason is not None:
                runtime.start_failure = reason
                self._fail_start(runtime, reason)
                return False
            try:
                launch = self._container_specs(runtime)
            except (SecretResolutionError, LogConfigError) as exc:
                runtime.start_failure = str(exc)
                self._fail_start(runtime, str(exc))
                return False
            taskstate.stamp(task, "pull_stopped_at")
        runtime.workdir.mkdir(parents=True, exist_ok=True)
        for spec, sink in launch:
            if runtime.stop_requested.is_set():
                return True
            on_line = sink.write if sink is not None else None
            env = {**spec.env, **self.reaper.env} if self.reaper is not None else spec.env
            try:
                process = ContainerProcess(spec.argv, env, str(runtime.workdir), on_line)
            except ContainerStartError as exc:
                with self.context.lock:
                    container = runtime.container(spec.name)
                    if container is not None:
                        taskstate.set_container(container, "STOPPED", reason=str(exc))
                    self._fail_start(runtime, str(exc))
                return True
            if self.reaper is not None:
                self.reaper.watch(process.pgid)
            runtime.processes[spec.name] = process
        with self.context.lock:
            if not runtime.stop_requested.is_set():
                self._set_running(runtime)
        return True

    def _cannot_get_out(self, runtime: TaskRuntime) -> str | None:
        """AWS's stop reason when a Fargate task's subnet keeps it from its secrets, its
        image or its logs (see local/egress.py), or the one RunTask already found (no free
        address in its subnets, local/subnets.py). Lock held."""
        if runtime.start_failure is not None:
            return runtime.start_failure
        if runtime.launch_type != "FARGATE":
            return None  # on EC2 the container instance pulls, over its own network
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[runtime.account][runtime.region]
        problem = egress.first_problem(runtime.task, runtime.task_def, ec2, runtime.region)
        return None if problem is None else egress.stop_reason(problem, runtime.region)

    def _fail_start(self, runtime: TaskRuntime, reason: str) -> None:
        runtime.request_stop("TaskFailedToStart", reason)
        runtime.task.desired_status = "STOPPED"
        taskstate.stamp(runtime.task, "stopping_at")

    def _container_specs(
        self, runtime: TaskRuntime
    ) -> list[tuple[specs.ContainerSpec, LogSink | None]]:
        base = specs.base_env(
            runtime.ip,
            runtime.region,
            self.context.endpoint_url,
            runtime.launch_type,
            str(runtime.workdir),
        )
        overrides = runtime.task.overrides or {}
        endpoints = None
        if self.agent is not None:
            role_arn = specs.task_role_arn(runtime.task_def, overrides)
            endpoints = self.agent.register(runtime, role_arn)
        result: list[tuple[specs.ContainerSpec, LogSink | None]] = []
        for definition in runtime.definitions():
            name = str(definition.get("name"))
            override = specs.override_for(overrides, name)
            argv = specs.bind_dask_command(specs.container_argv(definition, override), runtime.ip)
            agent_env = self.agent.env(endpoints, name) if self.agent and endpoints else {}
            env = specs.container_env(
                definition,
                override,
                {**base, **agent_env},
                lambda ref: resolve_secret(ref, runtime.account, runtime.region),
            )
            container = runtime.container(name)
            gpu_ids = getattr(container, "gpu_ids", None) if container is not None else None
            if gpu_ids:
                # The ECS agent hands a container its GPUs through this variable.
                env["NVIDIA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
            options = specs.awslogs_options(definition)
            sink = None
            if options is not None and self.logs is not None:
                sink = self.logs.open(
                    options, runtime.region, name, runtime.task_id, runtime.account
                )
                runtime.sinks[name] = sink
            spec = specs.ContainerSpec(
                name=name,
                essential=bool(definition.get("essential", True)),
                argv=argv,
                env=env,
                stop_timeout=specs.stop_timeout_of(definition),
                log_options=options,
                definition=definition,
            )
            result.append((spec, sink))
        return result

    def _watch(self, runtime: TaskRuntime) -> None:
        while not runtime.stop_requested.wait(POLL_INTERVAL):
            for name, process in list(runtime.processes.items()):
                if name in runtime.exit_codes:
                    continue
                code = process.poll()
                if code is None:
                    continue
                with self.context.lock:
                    runtime.exit_codes[name] = code
                    container = runtime.container(name)
                    if container is not None:
                        taskstate.set_container(container, "STOPPED", exit_code=code)
                    if runtime.essential(name):
                        self.stop(runtime.arn, "EssentialContainerExited")
                        return
            if runtime.processes and len(runtime.exit_codes) == len(runtime.processes):
                with self.context.lock:
                    self.stop(runtime.arn, "EssentialContainerExited")
                return

    def _stop_processes(self, runtime: TaskRuntime) -> None:
        with self.context.lock:
            task = runtime.task
            # A Spot interruption leaves the task RUNNING (desiredStatus STOPPED) while its
            # containers drain, as AWS reports it (its task state change event during the
            # two-minute warning); any other stop moves it on at once.
            draining = runtime.stop_code == "SpotInterruption" and task.last_status == "RUNNING"
            if not draining and task.last_status not in (FINAL, "STOPPING"):
                taskstate.set_status(task, "STOPPING")
            task.desired_status = "STOPPED"
            taskstate.stamp(task, "stopping_at")
        stopping.stop_all(
            runtime.processes,
            runtime.definitions(),
            self.stop_timeout,
            runtime.launch_type,
            runtime.stop_timeout_override,
        )
        with self.context.lock:
            if task.last_status == "RUNNING":
                taskstate.set_status(task, "DEACTIVATING")
                taskstate.set_status(task, "STOPPING")
        for name, process in runtime.processes.items():
            process.kill_leftovers()
            code = process.poll()
            if code is None:
                process.popen.wait()
                code = process.poll()
            if self.reaper is not None:
                self.reaper.forget(process.pgid)
            runtime.exit_codes.setdefault(name, code if code is not None else 137)
            process.wait_output(2.0)
        if self.logs is not None:
            for sink in runtime.sinks.values():
                self.logs.close(sink)
        with self.context.lock:
            if runtime.task.last_status != FINAL:
                taskstate.set_status(runtime.task, "DEPROVISIONING")

    def _finish(self, runtime: TaskRuntime) -> None:
        """STOPPED: exit codes, timestamps, ENI and address released. Lock held."""
        if runtime.done.is_set():
            return
        task = runtime.task
        if runtime.stop_code is None:
            runtime.request_stop("EssentialContainerExited", None)
        task.stop_code = runtime.stop_code
        task.stopped_reason = runtime.stop_reason
        task.desired_status = "STOPPED"
        taskstate.stamp(task, "stopping_at")
        if getattr(task, "started_at", None) is not None:
            taskstate.stamp(task, "execution_stopped_at")
        taskstate.stamp(task, "stopped_at")
        for container in task.containers:
            code = runtime.exit_codes.get(container.name)
            reason = None
            if code is None and runtime.start_failure:
                reason = runtime.start_failure
            taskstate.set_container(container, "STOPPED", exit_code=code, reason=reason)
        task.connectivity = None
        if getattr(task, "container_instance_arn", None):
            from moto.ecs.models import ecs_backends

            fleet.give_back(ecs_backends[runtime.account][runtime.region], task)
        from moto.ec2.models import ec2_backends

        taskstate.release_eni(task, ec2_backends[runtime.account][runtime.region], runtime.eni_id)
        self.addresses.release(runtime.ip)
        if self.agent is not None:
            self.agent.unregister(runtime.arn)
        taskstate.set_status(task, FINAL)
        runtime.done.set()
        if not self.simulated:
            shutil.rmtree(runtime.workdir, ignore_errors=True)

    # -- introspection and shutdown ----------------------------------------------------------
    def running_processes(self) -> list[dict[str, Any]]:
        result = []
        with self.context.lock:
            runtimes = list(self.runtimes.values())
        for runtime in runtimes:
            for name, process in list(runtime.processes.items()):
                if process.poll() is None:
                    result.append(
                        {
                            "taskArn": runtime.arn,
                            "container": name,
                            "pid": process.pid,
                            "pgid": process.pgid,
                            "ip": runtime.ip,
                            "argv": process.argv,
                        }
                    )
        return result

    def describe(self) -> list[dict[str, Any]]:
        with self.context.lock:
            return [
                {
                    "taskArn": r.arn,
                    "ip": r.ip,
                    "lastStatus": r.task.last_status,
                    "stopCode": r.stop_code,
                    "exitCodes": dict(r.exit_codes),
                    # The latency profile's draws for this task (seconds), or None.
                    "latency": None
                    if r.delays is None
                    else {"provisioning": r.delays.provisioning, "pending": r.delays.pending},
                }
                for r in self.runtimes.values()
            ]

    def reset(self) -> None:
        """After `POST /moto-api/reset`: stop every task and forget them. Lock held."""
        for runtime in list(self.runtimes.values()):
            if not runtime.done.is_set():
                runtime.stop_timeout_override = self.stop_timeout
                self.stop(runtime.arn, "UserInitiated", "moto reset")
        self.runtimes.clear()
        self.by_id.clear()
        self.client_tokens.clear()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every task: SIGTERM all process groups, SIGKILL after `timeout`."""
        self._closing = True
        grace = self.stop_timeout if timeout is None else timeout
        self.timers.close()
        with self.context.lock:
            runtimes = [r for r in self.runtimes.values() if not r.done.is_set()]
            for runtime in runtimes:
                runtime.stop_timeout_override = grace
                self.stop(runtime.arn, "UserInitiated", "Local AWS shutting down")
        deadline = time.monotonic() + grace + 5.0
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL every process group this data plane started (the atexit guard)."""
        for runtime in list(self.runtimes.values()):
            for process in list(runtime.processes.values()):
                process.kill_leftovers()
                if process.popen.poll() is None:
                    with contextlib.suppress(OSError):
                        process.popen.kill()
