"""WSGI middleware in front of moto's app: control routes, fault injection, one lock.

`/_local/...` paths are answered by `dask_aws.local.control`; every other request is
checked against the armed faults (by `service:Action`, taken from the SigV4 credential scope
and the X-Amz-Target header or the query `Action`), then handed to moto under the shared
lock. Callbacks queued during the request (e.g. launching the tasks RunTask created) run
once the response is rendered, so the RunTask reply still shows PROVISIONING. A moto reset
(`POST /moto-api/reset`) also stops every task and clears the armed faults. A 5xx out of
moto is recorded as a bug of the local AWS (`server_errors`).
"""

from __future__ import annotations

import io
import logging
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from dask_aws.local.context import LocalContext
from dask_aws.local.faults import error_response

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def request_operation(environ: dict[str, Any], read_body: bool) -> tuple[str, str, str] | None:
    """(service, Action, protocol) of an AWS API request, or None when unknown."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    service = match.group(1).lower()
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    if not read_body:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if not actions:
        query_actions = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if not query_actions:
            return None
        actions = query_actions
    return service, actions[0], "query"


class LocalMiddleware:
    def __init__(self, app: WSGIApp, context: LocalContext, control: WSGIApp) -> None:
        self.app = app
        self.context = context
        self.control = control

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/_local/"):
            return self.control(environ, start_response)
        faults = self.context.faults
        if faults.armed():
            operation = request_operation(environ, read_body=True)
            if operation is not None:
                service, action, protocol = operation
                kind = faults.take_failure(f"{service}:{action}")
                if kind is not None:
                    logger.info("injecting %s into %s:%s", kind, service, action)
                    response = error_response(kind, protocol, service)
                    reason = "Bad Request" if response.status < 500 else "Internal Server Error"
                    start_response(f"{response.status} {reason}", response.headers)
                    return [response.body]
        context = self.context
        if not environ.get("HTTP_X_AMZ_TARGET"):
            # Query-protocol bodies (EC2, IAM, STS) are read once here so that a 5xx can
            # still be put down to its Action after moto has consumed the body.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length and not isinstance(environ["wsgi.input"], io.BytesIO):
                environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        status: list[int] = []

        def record_status(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(status_line.split(" ", 1)[0]))
            return start_response(status_line, headers, exc_info)

        with context.lock:
            context.begin_request()
            try:
                try:
                    result = self.app(environ, record_status)
                    try:
                        body = b"".join(result)
                    finally:
                        close = getattr(result, "close", None)
                        if close is not None:
                            close()
                except Exception:
                    # moto's app lets most crashes out; the HTTP server answers them with 500.
                    self._record_error(environ, 500, traceback.format_exc())
                    raise
                if status and status[-1] >= 500:
                    detail = context.request_extra().get("exception") or body[:500].decode(
                        "utf-8", "replace"
                    )
                    self._record_error(environ, status[-1], detail)
                if environ.get("PATH_INFO", "").rstrip("/") == "/moto-api/reset":
                    context.dataplane.reset()
                    context.faults.clear()
            finally:
                after = context.end_request()
        for callback in after:
            try:
                callback()
            except Exception:
                logger.exception("after-response callback failed")
        return [body]

    def _record_error(self, environ: dict[str, Any], status: int, detail: str) -> None:
        stream = environ.get("wsgi.input")
        if isinstance(stream, io.BytesIO):
            stream.seek(0)
        operation = request_operation(environ, read_body=True)
        name = f"{operation[0]}:{operation[1]}" if operation else "unknown"
        self.context.server_errors.record(name, status, detail, environ.get("PATH_INFO", ""))


def remember_exception(context: LocalContext) -> Callable[..., None]:
    """A receiver of Flask's got_request_exception: the crash moto's app turned into a 500,
    kept for the request's server-error record (the 500 page itself says nothing)."""

    def receiver(sender: Any, exception: BaseException, **extra: Any) -> None:
        context.request_extra()["exception"] = "".join(
            traceback.format_exception(type(exception), exception, exception.__traceback__)
        )

    return receiver
