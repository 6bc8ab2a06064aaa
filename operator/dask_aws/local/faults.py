"""Fault injection: failing API calls and missing capacity, on demand.

Faults are armed from Python (`LocalAws.fail_next`, `LocalAws.capacity_failures`,
`LocalAws.set_spot_capacity`) or over
HTTP (`POST /_local/faults/...` on the endpoint's port) and consumed by the requests that
follow. A failing call never reaches moto, so it has no side effect, like a throttled call
on AWS.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["throttle", "5xx"]
FAULT_KINDS: tuple[str, ...] = ("throttle", "5xx")

# RunTask's per-task failure when Fargate (Spot) has no capacity: ECS developer guide, "API
# failure reasons" (RunTask, RESOURCE:FARGATE cause) and the re:Post knowledge center article
# "fargate-spot-termination-notice", which quotes this reason for FARGATE_SPOT.
CAPACITY_REASON = (
    "Capacity is unavailable at this time. Please try again later or in a different "
    "availability zone"
)


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def normalize_operation(operation: str) -> str:
    """`ecs:RunTask`, `ECS:RunTask` and `ecs:runtask` all name the same operation."""
    service, sep, action = operation.partition(":")
    if not sep or not service or not action:
        raise ValueError(f"operation must look like 'ecs:RunTask', got {operation!r}")
    return f"{service.lower()}:{action.lower()}"


def error_response(kind: FaultKind, protocol: str, service: str) -> ErrorResponse:
    """The wire form of a throttling or server error, as the service's protocol has it."""
    request_id = str(uuid.uuid4())
    if kind == "throttle":
        status = 400
        code = "RequestLimitExceeded" if service == "ec2" else "ThrottlingException"
        if protocol == "query" and service != "ec2":
            code = "Throttling"
        message = "Request limit exceeded." if service == "ec2" else "Rate exceeded"
    else:
        status = 500
        code = {"ecs": "ServerException", "ec2": "InternalError"}.get(service, "InternalFailure")
        message = "Service Unavailable. Please try again later. (injected by dask-aws local)"
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
    elif service == "ec2":
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error>"
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        error_type = "Sender" if status < 500 else "Receiver"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{error_type}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return ErrorResponse(status, headers, body)


class FaultPlan:
    """Armed faults, consumed by the requests that follow. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail_next: dict[str, list[tuple[FaultKind, int]]] = {}
        self._capacity: list[tuple[str | None, int]] = []
        # False: Fargate Spot has no capacity at all until set back (set_spot_capacity).
        self._spot_available = True

    def fail_next(self, operation: str, count: int = 1, kind: FaultKind = "throttle") -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if count < 0:
            raise ValueError("count must be >= 0")
        key = normalize_operation(operation)
        with self._lock:
            if count:
                self._fail_next.setdefault(key, []).append((kind, count))

    def armed(self) -> bool:
        """Cheap check, without the lock, whether any API failure is armed."""
        return bool(self._fail_next)

    def take_failure(self, operation: str) -> FaultKind | None:
        """Consume one armed failure of `operation` ('ecs:RunTask'), if any."""
        key = normalize_operation(operation)
        with self._lock:
            queue = self._fail_next.get(key)
            if not queue:
                return None
            kind, left = queue[0]
            if left <= 1:
                queue.pop(0)
                if not queue:
                    del self._fail_next[key]
            else:
                queue[0] = (kind, left - 1)
            return kind

    def capacity_failures(self, count: int, capacity_provider: str | None = "FARGATE_SPOT") -> None:
        """The next `count` tasks RunTask places on `capacity_provider` (None: any) fail."""
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            if count:
                self._capacity.append((capacity_provider, count))

    def set_spot_capacity(self, available: bool) -> None:
        """Whether FARGATE_SPOT has capacity; FARGATE (on-demand) is unaffected."""
        with self._lock:
            self._spot_available = bool(available)

    def take_capacity_failures(self, capacity_provider: str | None, wanted: int) -> int:
        """How many of `wanted` tasks on `capacity_provider` fail for lack of capacity."""
        failed = 0
        with self._lock:
            if capacity_provider == "FARGATE_SPOT" and not self._spot_available:
                return wanted
            for index, (provider, left) in enumerate(self._capacity):
                if failed >= wanted:
                    break
                if provider is not None and provider != capacity_provider:
                    continue
                take = min(left, wanted - failed)
                failed += take
                self._capacity[index] = (provider, left - take)
            self._capacity = [(p, n) for p, n in self._capacity if n > 0]
        return failed

    def clear(self) -> None:
        with self._lock:
            self._fail_next.clear()
            self._capacity.clear()
            self._spot_available = True

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "failNext": {k: [list(v) for v in q] for k, q in self._fail_next.items()},
                "capacity": [list(c) for c in self._capacity],
                "spotAvailable": self._spot_available,
            }
