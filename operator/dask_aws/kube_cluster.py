"""DaskAwsCluster: a `distributed` cluster backed by the operator, for notebooks on Kubernetes.

It creates (or attaches to) a DaskAwsCluster object, waits for Ready, and talks to the
scheduler with what the connection Secret holds: the address and, for TLS clusters, the
client certificate (`cluster.security`, which `Client(cluster)` uses). The notebook needs
Kubernetes access only (reading that Secret), no AWS credentials: the operator holds those.
close() deletes the object, and the operator's finalizer removes everything on AWS.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Generator
from typing import Any

from distributed.core import Status, rpc
from distributed.deploy.cluster import Cluster
from distributed.security import Security
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from dask_aws import certs
from dask_aws.controller import kube_names
from dask_aws.crd import GROUP, KIND, PLURAL, VERSION
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import ClusterStatus, ConditionType

POLL_SECONDS = 1.0


class DaskAwsClusterError(Exception):
    """The operator reported the cluster Stalled, or it did not become Ready in time."""


class DaskAwsCluster(Cluster):
    def __init__(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        spec: dict[str, Any] | None = None,
        n_workers: int | None = None,
        image: str | None = None,
        kubeconfig: str | None = None,
        create: bool = True,
        shutdown_on_close: bool = True,
        timeout: float = 600.0,
        asynchronous: bool = False,
        loop: Any = None,
    ) -> None:
        name = name or f"dask-{uuid.uuid4().hex[:8]}"
        body = dict(spec or {})
        if n_workers is not None:
            body["workers"] = {**body.get("workers", {}), "replicas": n_workers}
        if image is not None:
            body["image"] = image
        DaskAwsClusterSpec.model_validate(body)  # fail fast, before any API call
        self._spec = body
        self._create = create
        self._shutdown_on_close = shutdown_on_close
        self._timeout = timeout
        self._kubeconfig = kubeconfig
        self.namespace = namespace or _current_namespace(kubeconfig)
        self._api: client.CustomObjectsApi | None = None
        super().__init__(asynchronous=asynchronous, loop=loop, name=name)
        if not self.asynchronous:
            self._loop_runner.start()
            self.sync(self._start)

    def __await__(self) -> Generator[Any, None, DaskAwsCluster]:
        async def _() -> DaskAwsCluster:
            if self.status == Status.created:
                await self._start()
            return self

        return _().__await__()

    @property
    def api(self) -> client.CustomObjectsApi:
        if self._api is None:
            self._api = client.CustomObjectsApi(_load(self._kubeconfig))
        return self._api

    async def _start(self) -> None:
        self.status = Status.starting
        if self._create:
            await asyncio.to_thread(self._create_object)
        address = await asyncio.to_thread(self._wait_ready)
        self.security = await asyncio.to_thread(self._wait_credentials, address)
        args = self.security.get_connection_args("client")
        self.scheduler_comm = rpc(address, connection_args=args)
        await super()._start()

    def _create_object(self) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": self.name},
            "spec": self._spec,
        }
        self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def _get(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name
        )
        return result

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + self._timeout
        while True:
            obj = self._get()
            status = ClusterStatus.lenient(obj.get("status"))
            fresh = status.observed_generation == obj["metadata"].get("generation")
            stalled = status.condition(ConditionType.STALLED)
            if fresh and stalled is not None and stalled.status == "True":
                raise DaskAwsClusterError(f"{self.name}: {stalled.message}")
            if fresh and status.ready and status.scheduler_address:
                return status.scheduler_address
            if time.monotonic() > deadline:
                raise DaskAwsClusterError(
                    f"{self.name} not Ready after {self._timeout}s: {status.conditions}"
                )
            time.sleep(POLL_SECONDS)

    def _wait_credentials(self, address: str) -> Security:
        """What the connection Secret holds for `address`: the client certificate of a TLS
        cluster (a plain one needs none). The operator writes it in the step that reports
        the address; an unwritten one is waited for (its Warning Event says why)."""
        if not address.startswith("tls://"):
            return Security()
        core = client.CoreV1Api(self.api.api_client)
        deadline = time.monotonic() + self._timeout
        secret = kube_names.connection_secret_name(self.name)
        while True:
            try:
                data = core.read_namespaced_secret(secret, self.namespace).data or {}
            except ApiException as exc:
                if exc.status != 404:
                    raise
                data = {}
            pem = {k: base64.b64decode(v).decode() for k, v in data.items()}
            if pem.get("scheduler-address") == address and "tls.key" in pem:
                return certs.security_from_secret(pem)
            if time.monotonic() > deadline:
                raise DaskAwsClusterError(
                    f"{self.name}: the connection Secret {secret} does not hold the client "
                    f"certificate for {address} after {self._timeout}s"
                )
            time.sleep(POLL_SECONDS)

    @property
    def dashboard_link(self) -> str:
        status = self._get().get("status") or {}
        return str(status.get("dashboardAddress") or "")

    def scale(self, n: int) -> None:
        """Ask the operator for n workers (what `kubectl scale dac/NAME` does)."""
        self.api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            self.name,
            {"spec": {"workers": {"replicas": int(n)}}},
        )

    async def _close(self) -> None:
        if self.status == Status.closed:
            return
        await super()._close()
        if self._shutdown_on_close:
            await asyncio.to_thread(self._delete_object)

    def _delete_object(self) -> None:
        try:
            self.api.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name
            )
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:  # the finalizer removes the AWS resources first
            try:
                self._get()
            except ApiException as exc:
                if exc.status == 404:
                    return
                raise
            time.sleep(POLL_SECONDS)
        raise DaskAwsClusterError(f"{self.name} still being deleted after {self._timeout}s")


def _load(kubeconfig: str | None) -> client.ApiClient:
    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def _current_namespace(kubeconfig: str | None) -> str:
    try:
        _, context = config.list_kube_config_contexts(config_file=kubeconfig)
        return str(context.get("context", {}).get("namespace") or "default")
    except (config.ConfigException, OSError, TypeError):
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                return f.read().strip()
        except OSError:
            return "default"
