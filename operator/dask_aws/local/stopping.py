"""How a task's containers are stopped: `docker stop`, container by container.

StopTask, an essential container's exit and a Fargate Spot interruption all stop the others
the way the ECS agent does, with `docker stop`: SIGTERM to each container's main process
(PID 1) only, SIGKILL to the whole container after its `stopTimeout` (local/processes.py).
Containers stop in the reverse of their definition order (the agent stops dependents first).

The timeout is the container's own `stopTimeout`; unset, the server's default (AWS: 30 s).
Fargate caps it at 120 s (API_ContainerDefinition, stopTimeout: "For tasks that use the
Fargate launch type, the max stop timeout value is 120 seconds"); a Fargate Spot task has the
same 120 s, its two-minute warning, so a Spot interruption uses the container's own timeout
too (re:Post knowledge center, "fargate-spot-termination-notice").
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dask_aws.local import specs
from dask_aws.local.processes import ContainerProcess

FARGATE_MAX_STOP_TIMEOUT = 120.0
POLL = 0.05


def stop_timeout(definition: Mapping[str, Any], default: float, launch_type: str) -> float:
    """The seconds `docker stop` waits before SIGKILL for this container."""
    configured = specs.stop_timeout_of(definition)
    timeout = default if configured is None else configured
    if launch_type == "FARGATE":
        timeout = min(timeout, FARGATE_MAX_STOP_TIMEOUT)
    return max(timeout, 0.0)


def stop_all(
    processes: Mapping[str, ContainerProcess],
    definitions: Sequence[Mapping[str, Any]],
    default: float,
    launch_type: str,
    override: float | None = None,
) -> None:
    """`docker stop` every running container; returns once each main process has exited.

    `override` (server shutdown, moto reset) replaces every container's own timeout."""
    deadlines: dict[str, float] = {}
    now = time.monotonic()
    for definition in reversed(list(definitions)):
        name = str(definition.get("name"))
        process = processes.get(name)
        if process is None or process.poll() is not None:
            continue
        timeout = stop_timeout(definition, default, launch_type) if override is None else override
        process.terminate()
        deadlines[name] = now + timeout
    while deadlines:
        now = time.monotonic()
        for name in list(deadlines):
            process = processes[name]
            if process.poll() is not None:
                del deadlines[name]
            elif now >= deadlines[name]:
                process.signal(signal.SIGKILL)
                process.popen.wait()
                del deadlines[name]
        if deadlines:
            time.sleep(POLL)
