"""The Dask scheduler's HTTP API (`/api/v1`), which the scheduler task definition enables."""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0
RETIRE_TIMEOUT = 120.0  # retiring moves the workers' data to others first


class SchedulerUnreachable(Exception):
    pass


def _call(url: str, body: dict[str, Any] | None = None, timeout: float = TIMEOUT) -> Any:
    if os.environ.get("DASK_AWS_LOOPBACK_ONLY") == "1" and not _loopback(url):
        # Tests and the local AWS must never send traffic off this machine.
        raise SchedulerUnreachable(f"{url}: not a loopback address (DASK_AWS_LOOPBACK_ONLY=1)")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SchedulerUnreachable(f"{url}: {exc}") from exc


def _loopback(url: str) -> bool:
    try:
        return ipaddress.ip_address(host_of(url)).is_loopback
    except ValueError:
        return host_of(url) == "localhost"


def host_of(address: str) -> str:
    return urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""


def worker_addresses(base: str) -> list[str]:
    reply = _call(f"{base}/api/v1/get_workers")
    return [w["address"] for w in reply.get("workers", [])]


def retire_workers(base: str, addresses: list[str]) -> None:
    if addresses:
        _call(f"{base}/api/v1/retire_workers", {"workers": addresses}, timeout=RETIRE_TIMEOUT)


def adaptive_target(base: str) -> int:
    return int(_call(f"{base}/api/v1/adaptive_target")["workers"])


def idle_since(base: str) -> float | None:
    value = _call(f"{base}/api/v1/check_idle").get("idle_since")
    return None if value is None else float(value)
