"""Process-wide state shared by the middleware, the moto patches and the data plane.

moto's backends are not thread-safe, and the data plane edits task objects from its own
threads, so one re-entrant lock guards every request and every state edit: a DescribeTasks
response never shows a task half-way through a change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dask_aws.local.faults import FaultPlan
from dask_aws.local.quotas import FargateQuotas
from dask_aws.local.server_errors import ServerErrorLog

if TYPE_CHECKING:
    from dask_aws.local.dataplane import DataPlane


class LocalContext:
    def __init__(self, region: str, simulated: bool) -> None:
        self.region = region
        self.simulated = simulated
        self.lock = threading.RLock()
        self.faults = FaultPlan()
        self.quotas = FargateQuotas()
        self.server_errors = ServerErrorLog()
        self.endpoint_url = ""
        self._dataplane: DataPlane | None = None
        self._request = threading.local()

    @property
    def dataplane(self) -> DataPlane:
        assert self._dataplane is not None, "data plane not attached"
        return self._dataplane

    def attach(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    # Per-request scratch space (the werkzeug server runs each request on its own thread).
    def begin_request(self) -> None:
        self._request.after = []
        self._request.extra = {}

    def end_request(self) -> list[Callable[[], None]]:
        after: list[Callable[[], None]] = getattr(self._request, "after", [])
        self._request.after = None
        self._request.extra = None
        return after

    def after_response(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current response is rendered (now, outside a request)."""
        after = getattr(self._request, "after", None)
        if after is None:
            callback()
        else:
            after.append(callback)

    def request_extra(self) -> dict[str, Any]:
        """A dict that lives for the current request (e.g. RunTask failures to report)."""
        extra: dict[str, Any] | None = getattr(self._request, "extra", None)
        if extra is None:
            extra = {}
            self._request.extra = extra
        return extra


_ACTIVE: LocalContext | None = None


def set_active(context: LocalContext | None) -> None:
    global _ACTIVE
    _ACTIVE = context


def active() -> LocalContext | None:
    return _ACTIVE
