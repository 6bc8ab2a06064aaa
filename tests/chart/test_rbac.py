"""The chart's RBAC, proven on the real API server: the operator, started the way the
chart's Deployment starts it and authenticated as the chart's ServiceAccount, runs whole
DaskAwsCluster lifecycles (create -> Ready -> delete by the user or by idle timeout, no
leak) in both modes, and is refused what it does not need."""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from distributed.core import Server
from distributed.security import Security

from dask_aws import certs
from dask_aws.aws import tls_secret
from tests.chart.helpers import CHART, DeployedOperator, documents
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.operator import free_port
from tests.fixtures.polling import wait_for
from tests.k8s.controlplane import ControlPlane
from tests.operator.helpers import apply, event_reasons, get, manifest, ready

# What the operator's connection Secret holds for a TLS cluster (the default).
CONNECTION_KEYS = ["ca.crt", "dashboard-address", "scheduler-address", "tls.crt", "tls.key"]

pytestmark = [pytest.mark.slow, pytest.mark.k8s]
SMALL = {"replicas": 1, "cpu": 512, "memory": 1024}


@dataclass
class Release:
    cp: Any  # ControlPlane
    name: str
    namespace: str  # where the operator runs
    account: str  # its ServiceAccount
    values: list[str]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.account}"

    def deployment(self) -> dict[str, Any]:
        """As stored by the API server: what a kubelet would run."""
        name = f"{self.name}-dask-aws-operator"
        out = self.cp.kubectl("get", "deployment", name, "-n", self.namespace, "-o", "json")
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def operator(self, aws_env: dict[str, str], log: Path) -> DeployedOperator:
        kubeconfig = self.cp.service_account_kubeconfig(self.namespace, self.account, create=False)
        return DeployedOperator(self.deployment(), kubeconfig, aws_env, log)

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        scope = ["-n", namespace] if namespace else ["--all-namespaces"]
        proc = self.cp.kubectl(
            "auth", "can-i", verb, *_resource(resource), f"--as={self.user}", *scope, check=False
        )
        answer = str(proc.stdout).strip()
        assert answer in ("yes", "no"), proc.stderr
        return answer == "yes"


def _resource(resource: str) -> list[str]:
    """`kubectl auth can-i` arguments for "plural.group" or "plural.group/subresource": a
    subresource needs --subresource (in "TYPE/NAME" kubectl reads the part after / as the
    object's name)."""
    plural, _, subresource = resource.partition("/")
    return [plural, f"--subresource={subresource}"] if subresource else [plural]


def install(cp: Any, *values: str, create_namespaces: Sequence[str] = ()) -> Release:
    name = f"op{secrets.token_hex(3)}"
    namespace = f"{name}-system"
    for ns in create_namespaces:
        if cp.kubectl("get", "namespace", ns, check=False).returncode != 0:
            cp.create_namespace(ns)
    args = [
        "--set", f"ports.metrics={free_port()}",
        "--set", f"ports.probe={free_port()}",
        "--set", "operator.region=us-east-1",
        "--set", "operator.resyncSeconds=5",
        *values,
    ]  # fmt: skip
    cp.helm("install", name, str(CHART), "-n", namespace, "--create-namespace", *args)
    return Release(cp, name, namespace, f"{name}-dask-aws-operator", list(args))


def uninstall(release: Release) -> None:
    release.cp.helm("uninstall", release.name, "-n", release.namespace, check=False)
    release.cp.kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


@pytest.fixture
def operator_log(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "operator.log"
    yield log
    if log.exists():
        print("--- operator log ---\n" + "\n".join(log.read_text().splitlines()[-150:]))


def _forbidden(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if "forbidden" in ln.lower() or "status=403" in ln]


def _secret_keys(cp: Any, namespace: str, name: str) -> list[str] | None:
    proc = cp.kubectl(
        "get", "secret", f"{name}-dask-connection", "-n", namespace, "-o", "json", check=False
    )
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    return sorted(json.loads(proc.stdout)["data"])


def _gone(cp: Any, namespace: str, name: str, timeout: float = 90) -> None:
    wait_for(lambda: get(cp, namespace, name) is None, timeout, f"{namespace}/{name} deleted")


class _IdleScheduler:
    """The Dask scheduler's RPC at a simulated task's address, with the cluster's own
    certificate (the operator asks only as a TLS client): idle for an hour."""

    def __init__(self, address: str, bundle: certs.Bundle) -> None:
        security = Security(  # type: ignore[no-untyped-call]
            tls_ca_file=bundle.ca,
            tls_scheduler_cert=bundle.node_cert,
            tls_scheduler_key=bundle.node_key,
            require_encryption=True,
        )
        handlers = {
            "check_idle": lambda: time.time() - 3600,
            "identity": lambda: {"workers": {}},
            "adaptive_target": lambda: 0,
        }
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def start() -> Server:
            server = Server(handlers)  # type: ignore[no-untyped-call]
            await server.listen(address, **security.get_listen_args("scheduler"))  # type: ignore[no-untyped-call]
            return server

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


# ------------------------------------------------------------------------ namespaced


def test_namespaced_release_runs_a_lifecycle_and_nothing_more(
    k8s: Any, k8s_namespace: str, local_aws_simulated: Any, operator_log: Path
) -> None:
    watched = k8s_namespace
    other = f"{watched[:50]}-other"
    release = install(k8s, "--set", f"watchNamespaces={{{watched}}}", create_namespaces=[other])
    operator = release.operator(local_aws_simulated.env(), operator_log)
    try:
        # Not watched: the operator must leave it alone (and could not write its Secret).
        apply(k8s, other, manifest("elsewhere", workers=SMALL))
        started = time.monotonic()
        operator.start()
        apply(k8s, watched, manifest("demo", workers=SMALL))
        obj = ready(k8s, watched, "demo", timeout=90)
        ready_after = time.monotonic() - started
        uid = obj["metadata"]["uid"]
        assert obj["metadata"]["finalizers"] == ["daskaws.io/finalizer"]
        assert _secret_keys(k8s, watched, "demo") == CONNECTION_KEYS
        assert "Created" in event_reasons(k8s, watched, "demo")
        assert operator.healthz() == 200
        assert "dask_aws_reconciles_total" in operator.metrics()

        k8s.kubectl("delete", "dac/demo", "-n", watched, "--timeout=90s", timeout=120)
        _gone(k8s, watched, "demo")
        assert _secret_keys(k8s, watched, "demo") is None
        aws, _ = aws_for(local_aws_simulated.endpoint_url)
        assert tagged_resources(aws, uid) == []

        untouched = get(k8s, other, "elsewhere")
        assert untouched is not None
        # Only the CRD's defaults: no operator ever wrote its status or took it over.
        assert untouched["status"].get("observedGeneration") == 0
        assert "conditions" not in untouched["status"]
        assert not untouched["metadata"].get("finalizers")
        assert _forbidden(operator.log_text()) == []
        print(
            f"namespaced: Ready {ready_after:.1f}s after start; "
            f"read-only root filesystem: {operator.read_only_root}"
        )
    finally:
        operator.stop()
        k8s.kubectl("delete", "dac", "--all", "-n", other, "--wait=false", check=False)
        k8s.kubectl("delete", "namespace", other, "--wait=false", check=False)
        uninstall(release)

    # What it may and may not do, asked of the API server as the ServiceAccount.
    release = install(k8s, "--set", f"watchNamespaces={{{watched}}}")
    try:
        allowed = [
            ("list", "daskawsclusters.daskaws.io", watched),
            ("watch", "daskawsclusters.daskaws.io", watched),
            ("patch", "daskawsclusters.daskaws.io", watched),
            ("patch", "daskawsclusters.daskaws.io/status", watched),
            ("delete", "daskawsclusters.daskaws.io", watched),
            ("create", "daskawsclusters.daskaws.io", watched),  # a DaskAwsJob's own cluster
            ("list", "daskawsjobs.daskaws.io", watched),
            ("watch", "daskawsjobs.daskaws.io", watched),
            ("patch", "daskawsjobs.daskaws.io", watched),
            ("delete", "daskawsjobs.daskaws.io", watched),  # ttlSecondsAfterFinished
            ("patch", "daskawsjobs.daskaws.io/status", watched),
            ("update", "daskawsjobs.daskaws.io/finalizers", watched),
            ("update", "daskawsclusters.daskaws.io/finalizers", watched),
            ("create", "secrets", watched),
            ("update", "secrets", watched),
            ("delete", "secrets", watched),
            ("create", "events", watched),
        ]
        refused = [
            ("get", "secrets", watched),  # it writes its Secret, never reads any
            ("list", "secrets", watched),
            ("watch", "secrets", watched),
            ("create", "secrets", other),  # not a watched namespace
            ("update", "secrets", release.namespace),
            ("list", "secrets", None),
            ("list", "daskawsclusters.daskaws.io", other),
            ("list", "daskawsclusters.daskaws.io", None),
            ("create", "daskawsclusters.daskaws.io", other),
            ("update", "daskawsclusters.daskaws.io", watched),
            ("list", "daskawsjobs.daskaws.io", other),
            ("create", "daskawsjobs.daskaws.io", watched),  # jobs are the tenants' to make
            ("update", "daskawsjobs.daskaws.io", watched),
            ("update", "daskawsjobs.daskaws.io/status", watched),  # patch only
            ("get", "namespaces", None),
            ("create", "customresourcedefinitions.apiextensions.k8s.io", None),
            ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
            ("list", "pods", watched),
            ("create", "pods", watched),
            ("get", "configmaps", watched),
            ("create", "rolebindings.rbac.authorization.k8s.io", watched),
            ("impersonate", "serviceaccounts", watched),
        ]
        assert [a for a in allowed if not release.can(*a)] == []
        assert [r for r in refused if release.can(*r)] == []
        # And the token itself: reading the Secret it wrote is Forbidden.
        kubeconfig = k8s.service_account_kubeconfig(
            release.namespace, release.account, create=False
        )
        denied = k8s.kubectl("get", "secrets", "-n", watched, kubeconfig=kubeconfig, check=False)
        assert denied.returncode != 0 and "Forbidden" in denied.stderr
    finally:
        uninstall(release)


# ---------------------------------------------------------------------- cluster-wide


@pytest.fixture
def own_control_plane(k8s: Any, tmp_path: Path) -> Iterator[ControlPlane]:
    """A cluster-wide operator sees every namespace: give it an API server of its own,
    without the CRD, so that the chart's crds/ installs it."""
    with ControlPlane(tmp_path / "cp", k8s.bin_dir) as cp:
        yield cp


def test_cluster_wide_release_runs_lifecycles_in_any_namespace(
    own_control_plane: ControlPlane, local_aws_simulated: Any, operator_log: Path
) -> None:
    cp = own_control_plane
    release = install(cp, create_namespaces=["team-a", "team-b"])
    crds = cp.kubectl("get", "crd", "-o", "name").stdout.split()
    assert crds == [
        "customresourcedefinition.apiextensions.k8s.io/daskawsclusters.daskaws.io",
        "customresourcedefinition.apiextensions.k8s.io/daskawsjobs.daskaws.io",
        "customresourcedefinition.apiextensions.k8s.io/daskawspolicies.daskaws.io",
    ]
    operator = release.operator(local_aws_simulated.env(), operator_log)
    idle_spec = {
        "workers": SMALL,
        "scheduler": {
            "cpu": 512,
            "memory": 1024,
            "idleTimeoutSeconds": 1,
            "idleAction": "Delete",
        },
    }
    fake: _IdleScheduler | None = None
    try:
        operator.start()
        apply(cp, "team-a", manifest("demo", workers=SMALL))
        apply(cp, "team-b", manifest("idle", **idle_spec))
        t0 = time.monotonic()
        demo = ready(cp, "team-a", "demo", timeout=90)
        idle = ready(cp, "team-b", "idle", timeout=90)
        ready_after = time.monotonic() - t0
        assert _secret_keys(cp, "team-b", "idle") == CONNECTION_KEYS

        # The user deletes one...
        cp.kubectl("delete", "dac/demo", "-n", "team-a", "--timeout=90s", timeout=120)
        _gone(cp, "team-a", "demo")
        # ...and the operator deletes the other itself, once its scheduler reports idle.
        aws, _ = aws_for(local_aws_simulated.endpoint_url)
        bundle = tls_secret.bundle(aws, idle["status"]["aws"]["tlsSecretArn"])
        fake = _IdleScheduler(idle["status"]["schedulerAddress"], bundle)
        t1 = time.monotonic()
        uid = idle["metadata"]["uid"]
        wait_for(
            lambda: (
                (get(cp, "team-b", "idle") or {"metadata": {"deletionTimestamp": "gone"}})[
                    "metadata"
                ].get("deletionTimestamp")
                and _secret_keys(cp, "team-b", "idle") is None
                and tagged_resources(aws, uid) == []
            ),
            60,
            "the idle cluster deleted by the operator, its Secret and AWS resources gone",
        )
        idle_after = time.monotonic() - t1
        print(f"cluster-wide: both Ready in {ready_after:.1f}s; idle deletion {idle_after:.1f}s")
        assert "IdleDeleted" in event_reasons(cp, "team-b", "idle")
        wait_for(lambda: get(cp, "team-b", "idle") is None, 30, "the idle object gone")
        assert _secret_keys(cp, "team-a", "demo") is None
        assert tagged_resources(aws, demo["metadata"]["uid"]) == []
        assert _forbidden(operator.log_text()) == []

        allowed = [
            ("list", "daskawsclusters.daskaws.io", None),
            ("watch", "daskawsclusters.daskaws.io", None),
            ("delete", "daskawsclusters.daskaws.io", "team-a"),
            ("create", "daskawsclusters.daskaws.io", "team-a"),  # a DaskAwsJob's own cluster
            ("list", "daskawsjobs.daskaws.io", None),
            ("watch", "daskawsjobs.daskaws.io", None),
            ("delete", "daskawsjobs.daskaws.io", "team-b"),
            ("update", "daskawsjobs.daskaws.io/finalizers", "team-b"),
            ("create", "secrets", "team-b"),
        ]
        refused = [
            ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
            ("get", "secrets", "team-a"),
            ("list", "secrets", None),
            ("update", "daskawsclusters.daskaws.io", "team-a"),
            ("create", "daskawsjobs.daskaws.io", "team-a"),
            ("list", "namespaces", None),  # cluster-wide kopf does not scan namespaces
            ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
            ("list", "pods", None),
            ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
        ]
        assert [a for a in allowed if not release.can(*a)] == []
        assert [r for r in refused if release.can(*r)] == []
    finally:
        if fake is not None:
            fake.close()
        operator.stop()


def test_the_install_command_of_the_readme_sets_irsa(k8s: Any) -> None:
    role = "arn:aws:iam::123456789012:role/dask-aws-operator"
    # As a shell passes it: helm install ... --set serviceAccount.annotations."eks\.amazonaws...
    (value,) = shlex.split(f'serviceAccount.annotations."eks\\.amazonaws\\.com/role-arn"={role}')
    release = install(k8s, "--set", value)
    try:
        account = json.loads(
            k8s.kubectl("get", "sa", release.account, "-n", release.namespace, "-o", "json").stdout
        )
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role
        manifest_text = k8s.helm("get", "manifest", release.name, "-n", release.namespace).stdout
        kinds = sorted(d["kind"] for d in documents(manifest_text))
        assert kinds == [
            *["ClusterRole"] * 4,  # the operator's, and edit, view and policy-admin for people
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "ServiceAccount",
        ]
    finally:
        uninstall(release)


def test_a_tenant_with_the_charts_edit_role_runs_clusters_and_jobs_but_cannot_touch_its_policy(
    k8s: Any, k8s_namespace: str
) -> None:
    release = install(k8s)
    ns = k8s_namespace
    roles = f"{release.name}-dask-aws-operator"
    try:
        for account, role in (
            ("tenant", f"{roles}-edit"),
            ("viewer", f"{roles}-view"),
            ("platform", f"{roles}-policy-admin"),
        ):
            k8s.kubectl("create", "serviceaccount", account, "-n", ns)
            k8s.kubectl(
                "create",
                "rolebinding",
                account,
                "-n",
                ns,
                f"--clusterrole={role}",
                f"--serviceaccount={ns}:{account}",
            )

        def can(account: str, verb: str, resource: str) -> bool:
            proc = k8s.kubectl(
                "auth",
                "can-i",
                verb,
                *_resource(resource),
                "-n",
                ns,
                f"--as=system:serviceaccount:{ns}:{account}",
                check=False,
            )
            return str(proc.stdout).strip() == "yes"

        for verb in ("create", "patch", "delete", "get", "list"):
            assert can("tenant", verb, "daskawsclusters.daskaws.io"), verb
        assert can("tenant", "update", "daskawsclusters.daskaws.io/scale")
        for verb in ("create", "patch", "delete", "get", "list", "watch"):
            assert can("tenant", verb, "daskawsjobs.daskaws.io"), verb
        assert can("tenant", "get", "daskawsjobs.daskaws.io/status")
        # Status is the operator's: a tenant cannot mark its own job Complete.
        for verb in ("patch", "update"):
            assert not can("tenant", verb, "daskawsjobs.daskaws.io/status"), verb
            assert not can("tenant", verb, "daskawsclusters.daskaws.io/status"), verb
        viewed = (
            "daskawsclusters.daskaws.io",
            "daskawsjobs.daskaws.io",
            "daskawsjobs.daskaws.io/status",
        )
        for verb in ("get", "list", "watch"):
            for resource in viewed:
                assert can("viewer", verb, resource), (verb, resource)
        for verb in ("create", "patch", "delete"):
            assert not can("viewer", verb, "daskawsjobs.daskaws.io"), verb
        assert can("tenant", "get", "daskawspolicies.daskaws.io")  # sees its limits
        for verb in ("create", "patch", "update", "delete"):
            assert not can("tenant", verb, "daskawspolicies.daskaws.io"), verb
            assert can("platform", verb, "daskawspolicies.daskaws.io"), verb
        assert not can("tenant", "patch", "daskawspolicies.daskaws.io/status")
        # The built-in roles pick the chart's up through aggregation (the controller
        # manager fills them in): edit and admin get the tenant's rules, view reads.
        by_name = {
            d["metadata"]["name"]: d["metadata"]["labels"]
            for d in documents(
                k8s.helm("get", "manifest", release.name, "-n", release.namespace).stdout
            )
            if d["kind"] == "ClusterRole"
        }
        agg = "rbac.authorization.k8s.io/aggregate-to-"
        assert by_name[f"{roles}-edit"][agg + "edit"] == "true"
        assert by_name[f"{roles}-edit"][agg + "admin"] == "true"
        assert by_name[f"{roles}-view"][agg + "view"] == "true"
        assert not [k for k in by_name[f"{roles}-policy-admin"] if k.startswith(agg)]
    finally:
        uninstall(release)
