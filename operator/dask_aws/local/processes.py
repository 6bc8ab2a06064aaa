"""Container processes: one process group per container, stopped like Docker stops them.

Each container runs in a new session (its own process group), the stand-in for the
container's PID namespace. Stopping follows `docker stop`, which is what the ECS agent and
Fargate do: SIGTERM goes to the container's main process (PID 1) only, and SIGKILL to
everything in the container once the stop timeout has passed; when the main process exits,
whatever it left behind dies with it (the kernel kills a PID namespace whose init exits; here
the rest of the group is SIGKILLed). So a Dask nanny gets SIGTERM and can retire its worker
before it exits, while the worker subprocess itself is never sent SIGTERM.
(docs.docker.com, "docker container stop": "The main process inside the container will
receive SIGTERM, and after a grace period, SIGKILL".) Exit codes follow Docker: a process
killed by signal N exits with 128 + N (137 for SIGKILL, 143 for SIGTERM).

The data plane stops these groups itself; if the server dies without doing so (SIGKILL), its
reaper (local/reaper.py), told of every group, stops them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO


class ContainerStartError(RuntimeError):
    """The container's process could not be started (ECS: CannotStartContainerError)."""


def docker_exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group is already gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    return signal_group(pgid, 0)


class ContainerProcess:
    """A running container: a process group whose output is pumped line by line."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        if not argv:
            raise ContainerStartError("CannotStartContainerError: no command specified")
        executable = argv[0]
        if os.sep not in executable:
            found = shutil.which(executable, path=env.get("PATH", os.defpath))
            if found is None:
                raise ContainerStartError(
                    "CannotStartContainerError: failed to create task for container: "
                    f'exec: "{executable}": executable file not found in $PATH'
                )
            executable = found
        try:
            self.popen = subprocess.Popen(
                [executable, *argv[1:]],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ContainerStartError(
                f"CannotStartContainerError: failed to create task for container: {exc}"
            ) from exc
        self.pid = self.popen.pid
        self.pgid = self.popen.pid  # start_new_session: the leader's pid is the group id
        self.argv = list(argv)
        self.started_at = time.time()
        self._on_line = on_line
        assert self.popen.stdout is not None
        self._pump = threading.Thread(
            target=self._pump_output,
            args=(self.popen.stdout,),
            name=f"container-output-{self.pid}",
            daemon=True,
        )
        self._pump.start()

    def _pump_output(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                if self._on_line is not None:
                    self._on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        finally:
            stream.close()

    def poll(self) -> int | None:
        """The Docker-style exit code once the main process has exited, else None."""
        code = self.popen.poll()
        return None if code is None else docker_exit_code(code)

    def signal(self, sig: int) -> None:
        """Send `sig` to every process of the container (its whole group)."""
        if not signal_group(self.pgid, sig) and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM to the main process only, as `docker stop` sends it (PID 1)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def stop(self, timeout: float) -> int:
        """SIGTERM the main process, SIGKILL the group after `timeout` seconds; the exit code."""
        if self.popen.poll() is None:
            self.terminate()
            try:
                self.popen.wait(timeout=max(timeout, 0.0))
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait()
        self.kill_leftovers()
        return docker_exit_code(self.popen.returncode)

    def kill_leftovers(self) -> None:
        """SIGKILL whatever is left of the group (grandchildren outliving the main process)."""
        signal_group(self.pgid, signal.SIGKILL)

    def wait_output(self, timeout: float) -> None:
        """Wait until the output pump has read everything the group wrote."""
        self._pump.join(timeout)
