"""The reaper: a watchdog that stops every task process once the local AWS server is gone.

A graceful stop (and SIGTERM/SIGINT) of the server stops its tasks itself (see
`DataPlane.shutdown`). A server killed with SIGKILL, or dead of an OOM or a crash, cannot, so
at start-up it starts this watchdog: a small process of its own (plain Python, standard
library only) in a session of its own, so that a kill of the server's process group does not
take it. The server holds the write end of a pipe to the watchdog's stdin and tells it each
container process group it starts (`+PGID`) and each one it has finished stopping (`-PGID`).
When that pipe reaches end of file, the server has exited, however it exited: the watchdog
sends SIGTERM to every process of its tasks, SIGKILL after `grace` seconds to whatever is left,
and exits.

"Every process of its tasks" is every process of a recorded group plus, on Linux, every
process whose environment carries the server's marker (`MARKER_ENV=<token>`, which each
container is started with and passes on to what it spawns): that catches what left its
group (setsid, a double-forked daemon) and a group the server started but had no time to
announce. A process that clears its environment *and* leaves its group escapes; nothing
else does, short of a cgroup.

The watchdog is run as `python -I reaper.py TOKEN GRACE` (no imports from this package, no
site-specific path): it starts in tens of milliseconds and holds little memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

MARKER_ENV = "DASK_AWS_LOCAL_REAPER"
PROC = "/proc"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, from /proc/PID/stat; None when gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[2])
    except (IndexError, ValueError):
        return None


def _marked(pid: int, marker: bytes) -> bool:
    try:
        with open(f"{PROC}/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:  # gone, or another user's process
        return False
    return environ.startswith(marker) or b"\0" + marker in environ


def survivors(groups: Iterable[int], marker: str | None, exclude: Iterable[int] = ()) -> set[int]:
    """Pids of live (not zombie) processes in `groups` or whose environment has `marker`
    ("NAME=value"). Needs /proc (Linux); elsewhere, the empty set."""
    wanted = set(groups)
    skip = {os.getpid(), *exclude}
    token = (marker + "\0").encode() if marker else None
    found: set[int] = set()
    try:
        entries = os.listdir(PROC)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in skip:
            continue
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if stat[1] in wanted or (token is not None and _marked(pid, token)):
            found.add(pid)
    return found


def _signal_all(groups: Iterable[int], pids: Iterable[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def reap(groups: set[int], marker: str | None, grace: float, exclude: Iterable[int] = ()) -> int:
    """SIGTERM everything of `groups` and `marker`, SIGKILL what is left after `grace`
    seconds; how many processes were found at first."""
    have_proc = os.path.isdir(PROC)
    first = survivors(groups, marker, exclude)
    if have_proc and not first:
        return 0
    _signal_all(groups, first, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if have_proc and not survivors(groups, marker, exclude):
            return len(first)
        time.sleep(0.05)
    for _ in range(50):  # what forks while being killed is found on the next round
        left = survivors(groups, marker, exclude)
        _signal_all(groups, left, signal.SIGKILL)
        if not have_proc or not left:
            break
        time.sleep(0.02)
    return len(first)


def serve(stream: int, marker: str, grace: float) -> None:
    """Read `+PGID`/`-PGID` lines from `stream` until end of file, then reap."""
    groups: set[int] = set()
    pending = b""
    while True:
        try:
            chunk = os.read(stream, 65536)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                if line.startswith(b"+"):
                    groups.add(int(line[1:]))
                elif line.startswith(b"-"):
                    groups.discard(int(line[1:]))
    reap(groups, marker, grace)


def main(argv: list[str]) -> int:
    token, grace = argv[0], float(argv[1])
    # The server's Ctrl-C or terminal hang-up is the server's business; end of file is ours.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    serve(0, f"{MARKER_ENV}={token}", grace)
    return 0


class Reaper:
    """The server's side: starts the watchdog and tells it about process groups."""

    def __init__(self, token: str, grace: float = 1.5) -> None:
        self.token = token
        self.grace = grace
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._broken = False

    @property
    def env(self) -> dict[str, str]:
        """What every container's environment gets, so that the watchdog finds its processes."""
        return {MARKER_ENV: self.token}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Reaper:
        self._process = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), self.token, str(self.grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        return self

    def _send(self, line: str) -> None:
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or self._broken:
                return
            try:
                process.stdin.write(line.encode() + b"\n")
                process.stdin.flush()
            except (OSError, ValueError):
                self._broken = True
                print(
                    "dask-aws local: the reaper is gone; task processes may outlive a killed "
                    "server",
                    file=sys.stderr,
                    flush=True,
                )

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def close(self, timeout: float = 10.0) -> None:
        """End of file for the watchdog: it reaps what is left (nothing, after a graceful
        stop) and exits; wait for it."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
