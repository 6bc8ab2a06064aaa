"""awslogs: container output shipped to the local CloudWatch Logs, in batches.

Like the awslogs driver: the stream is `<awslogs-stream-prefix>/<container-name>/<task-id>`
in `awslogs-group` (created when `awslogs-create-group` is "true", otherwise it must exist or
the task fails to start). Each container's output pump appends lines to a buffer; one
shipper thread writes all buffers to moto's logs backend every `interval` seconds, so the
Logs API (GetLogEvents, FilterLogEvents) reads them back.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000
MAX_MESSAGE = 256 * 1024 - 26


class LogConfigError(RuntimeError):
    """The log group is missing (ECS: ResourceInitializationError at task start)."""


def stream_name(options: dict[str, str], container: str, task_id: str) -> str:
    prefix = options.get("awslogs-stream-prefix")
    return f"{prefix}/{container}/{task_id}" if prefix else f"{container}/{task_id}"


class LogSink:
    """Where one container's lines go."""

    def __init__(self, region: str, group: str, stream: str, account: str) -> None:
        self.account = account  # the task's account: its log group lives there
        self.region = region
        self.group = group
        self.stream = stream
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []

    def write(self, line: str) -> None:
        event = {"timestamp": int(time.time() * 1000), "message": line[:MAX_MESSAGE] or " "}
        with self._lock:
            self._pending.append(event)

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            events, self._pending = self._pending, []
        return events


class LogShipper:
    def __init__(self, lock: threading.RLock, account: str, interval: float = 0.2) -> None:
        self._lock = lock
        self._account = account  # for a task whose account is not said
        self._interval = interval
        self._sinks: list[LogSink] = []
        self._sinks_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="awslogs-shipper", daemon=True)
        self._thread.start()

    def open(
        self,
        options: dict[str, str],
        default_region: str,
        container: str,
        task_id: str,
        account: str | None = None,
    ) -> LogSink:
        """Create the stream (and the group when allowed) in the task's `account`; call
        with the shared lock held."""
        from moto.logs.models import logs_backends

        region = options.get("awslogs-region") or default_region
        group = options.get("awslogs-group")
        if not group:
            raise LogConfigError(
                "ResourceInitializationError: failed to validate logger args: "
                "awslogs-group is required"
            )
        account = account or self._account
        backend = logs_backends[account][region]
        if group not in backend.groups:
            if options.get("awslogs-create-group", "").lower() == "true":
                backend.create_log_group(group, {})
            else:
                raise LogConfigError(
                    "ResourceInitializationError: failed to validate logger args: create "
                    "stream has been retried 1 times: failed to create Cloudwatch log stream: "
                    "ResourceNotFoundException: The specified log group does not exist. "
                    ": exit status 1"
                )
        stream = stream_name(options, container, task_id)
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        sink = LogSink(region, group, stream, account)
        with self._sinks_lock:
            self._sinks.append(sink)
        return sink

    def close(self, sink: LogSink) -> None:
        """Ship what is left of `sink` and forget it."""
        self._ship(sink)
        with self._sinks_lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def _ship(self, sink: LogSink) -> None:
        from moto.logs.models import logs_backends

        events = sink.take()
        if not events:
            return
        events.sort(key=lambda e: e["timestamp"])
        with self._lock:
            backend = logs_backends[sink.account][sink.region]
            for start in range(0, len(events), MAX_BATCH):
                try:
                    backend.put_log_events(
                        sink.group, sink.stream, events[start : start + MAX_BATCH]
                    )
                except Exception:
                    logger.warning(
                        "dropping %d log events for %s/%s",
                        len(events),
                        sink.group,
                        sink.stream,
                        exc_info=True,
                    )

    def flush(self) -> None:
        with self._sinks_lock:
            sinks = list(self._sinks)
        for sink in sinks:
            self._ship(sink)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:
                logger.exception("awslogs shipper failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
