"""The ECS agent's endpoints for containers: task metadata (v4, v3) and task-role credentials.

On AWS each task reaches them at 169.254.170.2; here all tasks share one HTTP server on
127.0.0.1 (botocore accepts a loopback host in `AWS_CONTAINER_CREDENTIALS_FULL_URI`). Since
every local process can reach that port, paths hold unguessable ids, and the credentials
also need the task's `AWS_CONTAINER_AUTHORIZATION_TOKEN`, so one task never reads another
task's credentials.

GET /v4/<container id>[/task][/stats][/task/stats]   metadata (the same under /v3/)
GET /v2/credentials/<credentials id>                 with `Authorization: <task token>`
"""

from __future__ import annotations

import datetime
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dask_aws.local import metadata
from dask_aws.local.credentials import RoleCredentials, TaskRoleError, assume_task_role

if TYPE_CHECKING:
    from dask_aws.local.dataplane import TaskRuntime

logger = logging.getLogger(__name__)

# ECS task-role credentials last hours and the agent rotates them well before they expire;
# botocore refreshes from 15 minutes before expiry, so a served set always has more left.
CREDENTIALS_DURATION = 6 * 3600
REFRESH_MARGIN = 3600.0


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


@dataclass
class TaskEndpoints:
    """What one task's containers are told: URIs and the task's credentials token."""

    runtime: TaskRuntime
    role_arn: str | None
    token: str
    credentials_id: str
    container_ids: dict[str, str] = field(default_factory=dict)
    credentials: RoleCredentials | None = None


class TaskAgent:
    def __init__(self, lock: threading.RLock, host: str = "127.0.0.1") -> None:
        self.lock = lock  # the shared lock: moto's state and the task objects
        self.host = host
        self._registry_lock = threading.Lock()
        self._by_task: dict[str, TaskEndpoints] = {}
        self._containers: dict[str, tuple[TaskEndpoints, str]] = {}
        self._credentials: dict[str, TaskEndpoints] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TaskAgent:
        self._server = make_server(
            self.host, 0, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="local-ecs-agent",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the data plane's side ---------------------------------------------------------------
    def register(self, runtime: TaskRuntime, role_arn: str | None) -> TaskEndpoints:
        endpoints = TaskEndpoints(
            runtime=runtime,
            role_arn=role_arn or None,
            token=secrets.token_urlsafe(32),
            credentials_id=secrets.token_urlsafe(24),
        )
        for definition in runtime.definitions():
            name = str(definition.get("name"))
            endpoints.container_ids[name] = f"{runtime.task_id}-{secrets.token_hex(16)}"
        with self._registry_lock:
            self._unregister_locked(runtime.arn)
            self._by_task[runtime.arn] = endpoints
            for name, container_id in endpoints.container_ids.items():
                self._containers[container_id] = (endpoints, name)
            self._credentials[endpoints.credentials_id] = endpoints
        return endpoints

    def unregister(self, task_arn: str) -> None:
        with self._registry_lock:
            self._unregister_locked(task_arn)

    def _unregister_locked(self, task_arn: str) -> None:
        endpoints = self._by_task.pop(task_arn, None)
        if endpoints is None:
            return
        for container_id in endpoints.container_ids.values():
            self._containers.pop(container_id, None)
        self._credentials.pop(endpoints.credentials_id, None)

    def env(self, endpoints: TaskEndpoints, name: str) -> dict[str, str]:
        """The agent's variables for container `name`: metadata URIs, and credentials when
        the task has a role (without one, as on AWS, the container has no credentials)."""
        container_id = endpoints.container_ids[name]
        env = {
            "ECS_CONTAINER_METADATA_URI_V4": f"{self.base_url}/v4/{container_id}",
            "ECS_CONTAINER_METADATA_URI": f"{self.base_url}/v3/{container_id}",
        }
        if endpoints.role_arn:
            # FULL_URI, not AWS's RELATIVE_URI: botocore prefers the relative one and would
            # prefix it with 169.254.170.2, which is not reachable here.
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = (
                f"{self.base_url}/v2/credentials/{endpoints.credentials_id}"
            )
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = endpoints.token
        return env

    # -- HTTP --------------------------------------------------------------------------------
    def app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        status, payload = self._answer(environ)
        body = json.dumps(payload).encode()
        reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        start_response(
            f"{status} {reasons.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[int, Any]:
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            return 400, {"code": "InvalidRequest", "message": "only GET is served"}
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        if len(parts) == 3 and parts[:2] == ["v2", "credentials"]:
            return self._credentials_answer(parts[2], environ.get("HTTP_AUTHORIZATION", ""))
        if len(parts) >= 2 and parts[0] in ("v3", "v4"):
            return self._metadata_answer(parts[1], parts[2:])
        return 404, {"code": "NotFound", "message": "unknown path"}

    def _metadata_answer(self, container_id: str, rest: list[str]) -> tuple[int, Any]:
        with self._registry_lock:
            found = self._containers.get(container_id)
        if found is None:
            return 404, {"code": "NotFound", "message": "unknown container"}
        endpoints, name = found
        if rest in (["stats"], ["task", "stats"]):
            return 200, {}  # no Docker stats for a local process
        with self.lock:
            if rest == []:
                return 200, metadata.container_document(endpoints.runtime, name)
            if rest == ["task"]:
                return 200, metadata.task_document(endpoints.runtime)
        return 404, {"code": "NotFound", "message": "unknown path"}

    def _credentials_answer(self, credentials_id: str, token: str) -> tuple[int, Any]:
        with self._registry_lock:
            endpoints = self._credentials.get(credentials_id)
        if endpoints is None or not hmac.compare_digest(token.encode(), endpoints.token.encode()):
            # One answer for both: an unknown id tells nothing about which part was wrong.
            return 401, {"code": "AccessDenied", "message": "invalid credentials request"}
        role_arn = endpoints.role_arn
        if role_arn is None:
            return 400, {"code": "NoCredentials", "message": "the task has no task role"}
        now = datetime.datetime.now(datetime.UTC)
        with self.lock:
            cached = endpoints.credentials
            if cached is None or cached.seconds_left(now) < REFRESH_MARGIN:
                try:
                    cached = assume_task_role(
                        role_arn,
                        endpoints.runtime.task_id,
                        endpoints.runtime.region,
                        CREDENTIALS_DURATION,
                    )
                except TaskRoleError as exc:
                    logger.warning("task %s: %s", endpoints.runtime.arn, exc)
                    return 400, {"code": "InvalidRole", "message": str(exc)}
                endpoints.credentials = cached
        return 200, cached.document()
