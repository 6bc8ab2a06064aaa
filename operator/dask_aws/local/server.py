"""The local AWS server: moto's app behind the local middleware, plus the data plane.

One per process: it patches moto (see `dask_aws.local.patches`). `LocalAws` runs it in a
child process; `dask-aws local up` runs it in the foreground.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

# Before moto is imported anywhere in this process: load AWS managed IAM policies
# (AmazonECSTaskExecutionRolePolicy must be attachable).
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from flask.signals import got_request_exception
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from dask_aws.local import patches, quotas
from dask_aws.local.agent import TaskAgent
from dask_aws.local.context import LocalContext, active, set_active
from dask_aws.local.control import ControlApp
from dask_aws.local.dataplane import DataPlane
from dask_aws.local.latency import LatencyProfile
from dask_aws.local.logs import LogShipper
from dask_aws.local.middleware import LocalMiddleware, remember_exception
from dask_aws.local.reaper import Reaper

logger = logging.getLogger(__name__)


class QuietRequestHandler(MotoRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


class LocalAwsServer:
    def __init__(
        self,
        port: int = 0,
        simulated: bool = False,
        stop_timeout: float = 5.0,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        address_quarantine: float = 30.0,
        address_base: str = "127.1.0.0",
        fargate_vcpu_quota: float = quotas.DEFAULT_VCPU,
        fargate_spot_vcpu_quota: float = quotas.DEFAULT_VCPU,
        latency: LatencyProfile | str | None = None,
        latency_seed: int = 0,
    ) -> None:
        # How long tasks stay PROVISIONING and PENDING (local/latency.py); default none.
        self.latency = (
            latency
            if isinstance(latency, LatencyProfile)
            else LatencyProfile.parse(latency, latency_seed)
        )
        self.address_base = address_base
        self.fargate_vcpu_quota = fargate_vcpu_quota
        self.fargate_spot_vcpu_quota = fargate_spot_vcpu_quota
        self.host = host
        self.requested_port = port
        self.simulated = simulated
        self.stop_timeout = stop_timeout
        self.region = region
        self.address_quarantine = address_quarantine
        self.port = 0
        self.context: LocalContext | None = None
        self.dataplane: DataPlane | None = None
        self.agent: TaskAgent | None = None
        self.reaper: Reaper | None = None
        self._logs: LogShipper | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self._stopped = threading.Event()
        self._on_exception: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalAwsServer:
        if active() is not None:
            raise RuntimeError("a local AWS server is already running in this process")
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        patches.install()
        context = LocalContext(self.region, self.simulated)
        context.quotas.set(quotas.ON_DEMAND, self.fargate_vcpu_quota)
        context.quotas.set(quotas.SPOT, self.fargate_spot_vcpu_quota)
        self._on_exception = remember_exception(context)
        got_request_exception.connect(self._on_exception)
        self._workdir = Path(tempfile.mkdtemp(prefix="dask-aws-local-"))
        self._logs = None if self.simulated else LogShipper(context.lock, DEFAULT_ACCOUNT_ID)
        # Metadata and credentials endpoints for the containers (none run when simulated).
        self.agent = None if self.simulated else TaskAgent(context.lock).start()
        # Stops the tasks' processes when this process dies without stopping them (SIGKILL).
        if not self.simulated:
            token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self.reaper = Reaper(token, grace=min(max(self.stop_timeout, 0.5), 2.0)).start()
        self.dataplane = DataPlane(
            context,
            DEFAULT_ACCOUNT_ID,
            simulated=self.simulated,
            stop_timeout=self.stop_timeout,
            workdir=self._workdir,
            address_quarantine=self.address_quarantine,
            logs=self._logs,
            address_base=self.address_base,
            agent=self.agent,
            reaper=self.reaper,
            latency=self.latency,
        )
        context.attach(self.dataplane)
        app = LocalMiddleware(
            DomainDispatcherApplication(create_backend_app), context, ControlApp(context)
        )
        self._server = make_server(
            self.host, self.requested_port, app, threaded=True, request_handler=QuietRequestHandler
        )
        self.port = int(self._server.server_address[1])
        context.endpoint_url = self.endpoint_url
        self.context = context
        set_active(context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="local-aws-http",
            daemon=True,
        )
        self._thread.start()
        atexit.register(self._atexit_guard)
        logger.info(
            "local AWS listening on %s (simulated=%s, latency=%s)",
            self.endpoint_url,
            self.simulated,
            self.latency,
        )
        return self

    def stop(self) -> None:
        """Stop every task's processes (SIGTERM, then SIGKILL), then the HTTP server."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            if self.dataplane is not None:
                self.dataplane.shutdown()
            if self._logs is not None:
                self._logs.stop()
            if self.agent is not None:
                self.agent.stop()
        finally:
            if self.reaper is not None:
                self.reaper.close()
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            set_active(None)
            if self._on_exception is not None:
                got_request_exception.disconnect(self._on_exception)
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
            atexit.unregister(self._atexit_guard)

    def _atexit_guard(self) -> None:
        if self.dataplane is not None:
            self.dataplane.kill_all()
        if self.reaper is not None:
            self.reaper.close()

    def __enter__(self) -> LocalAwsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
