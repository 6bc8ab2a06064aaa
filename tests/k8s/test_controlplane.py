"""The test control plane itself, and the API-server behaviour tests rely on:
CRD schema/CEL validation, the scale and status subresources, RBAC through a
ServiceAccount token, garbage collection and namespace deletion."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.k8s import crd_files, crds_dir
from tests.fixtures.polling import wait_for
from tests.k8s.controlplane import HERE, ControlPlane, pinned_versions

pytestmark = pytest.mark.k8s

CRD_NAME = "daskawsclusters.daskaws.io"
API = "daskaws.io/v1alpha1"

# Used only while crds/ has no CRD (e.g. on a branch without the generated one).
STAND_IN_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: daskawsclusters.daskaws.io
spec:
  group: daskaws.io
  scope: Namespaced
  names:
    kind: DaskAwsCluster
    listKind: DaskAwsClusterList
    plural: daskawsclusters
    singular: daskawscluster
    shortNames: [dac]
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.workers.replicas
        statusReplicasPath: .status.replicas
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            default: {}
            properties:
              image: {type: string, minLength: 1, default: "ghcr.io/dask/dask:latest"}
              workers:
                type: object
                default: {}
                properties:
                  replicas: {type: integer, minimum: 0, default: 1}
                  cpu: {type: integer, minimum: 128, maximum: 16384, default: 4096}
                  memory: {type: integer, minimum: 512, maximum: 122880, default: 16384}
            x-kubernetes-validations:
            - rule: "self.workers.cpu != 256 || self.workers.memory in [512, 1024, 2048]"
              fieldPath: .workers
              message: "workers: cpu/memory is not a Fargate task size"
          status:
            type: object
            properties:
              phase: {type: string}
              replicas: {type: integer}
"""


def crd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """crds/ when it holds the generated CRD, else a directory with the stand-in."""
    if crd_files():
        return crds_dir()
    directory = tmp_path_factory.mktemp("stand-in-crds")
    (directory / "daskawscluster.yaml").write_text(STAND_IN_CRD)
    return directory


@pytest.fixture(scope="module")
def dac_crd(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DaskAwsCluster CRD, installed (the k8s fixture already applies crds/)."""
    directory = crd_dir(tmp_path_factory)
    if directory != crds_dir():
        k8s.apply_crds(directory)
    return directory


def dac(name: str, namespace: str, workers: dict[str, Any] | None = None) -> str:
    manifest = {
        "apiVersion": API,
        "kind": "DaskAwsCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "ghcr.io/dask/dask:latest",
            "workers": {"replicas": 2} if workers is None else workers,
        },
    }
    return json.dumps(manifest)


def get_json(k8s: ControlPlane, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(k8s.kubectl("get", *args, "-o", "json").stdout)
    return result


# ----------------------------------------------------------------- binaries


def test_version_is_pinned(k8s: ControlPlane) -> None:
    pinned = pinned_versions()["kubernetes"]
    major, minor = pinned.removeprefix("v").split(".")[:2]
    server = k8s.version()
    assert server["gitVersion"] == pinned
    assert (server["major"], server["minor"]) == (major, minor)
    client = json.loads(k8s.kubectl("version", "--client", "-o", "json").stdout)
    assert client["clientVersion"]["gitVersion"] == pinned


def test_helm_version(k8s: ControlPlane) -> None:
    out = k8s.helm("version", "--template", "{{.Version}}").stdout.strip()
    assert out == pinned_versions()["helm"]


def test_etcd_version(k8s: ControlPlane) -> None:
    out = subprocess.run(
        [str(k8s.bin_dir / "etcd"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"etcd Version: {pinned_versions()['etcd'].removeprefix('v')}" in out


def test_build_is_noop_when_built(k8s: ControlPlane) -> None:
    if os.environ.get("DASK_AWS_K8S_BIN"):
        pytest.skip("binaries given by DASK_AWS_K8S_BIN")
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(HERE / "build.sh")], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == str(k8s.bin_dir)
    assert time.monotonic() - start < 20


# ---------------------------------------------------------------------- CRD


def test_apply_crds(
    k8s: ControlPlane, dac_crd: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    applied = k8s.apply_crds(crd_dir(tmp_path_factory))
    assert f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME}" in applied
    crd = get_json(k8s, "crd", CRD_NAME)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.workers.replicas"
    assert version["subresources"]["scale"]["statusReplicasPath"] == ".status.replicas"
    resources = k8s.kubectl("api-resources", "--api-group=daskaws.io", "-o", "name").stdout
    assert CRD_NAME in resources.split()


def test_valid_dac_accepted(k8s: ControlPlane, dac_crd: Path, k8s_namespace: str) -> None:
    k8s.kubectl("apply", "-f", "-", input=dac("x", k8s_namespace))
    obj = get_json(k8s, "dac", "x", "-n", k8s_namespace)
    assert obj["spec"]["workers"]["replicas"] == 2
    assert obj["spec"]["image"] == "ghcr.io/dask/dask:latest"


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        ({"replicas": -1}, ["spec.workers.replicas", "greater than or equal to 0"]),
        ({"replicas": 1, "cpu": 256, "memory": 30720}, ["spec.workers", "Fargate"]),
    ],
    ids=["negative-replicas", "fargate-size-cel"],
)
def test_invalid_dac_rejected_by_api_server(
    k8s: ControlPlane,
    dac_crd: Path,
    k8s_namespace: str,
    workers: dict[str, Any],
    expected: list[str],
) -> None:
    result = k8s.kubectl("apply", "-f", "-", input=dac("x", k8s_namespace, workers), check=False)
    assert result.returncode != 0, result.stdout
    assert re.search(r'DaskAwsCluster(\.daskaws\.io)? "x" is invalid', result.stderr), result.stderr
    for text in expected:
        assert text in result.stderr
    missing = k8s.kubectl("get", "dac", "x", "-n", k8s_namespace, check=False)
    assert "NotFound" in missing.stderr


def test_scale_subresource(k8s: ControlPlane, dac_crd: Path, k8s_namespace: str) -> None:
    k8s.kubectl("apply", "-f", "-", input=dac("x", k8s_namespace))
    k8s.kubectl("scale", "dac/x", "--replicas=5", "-n", k8s_namespace)
    obj = get_json(k8s, "dac", "x", "-n", k8s_namespace)
    assert obj["spec"]["workers"]["replicas"] == 5
    scale = json.loads(
        k8s.kubectl(
            "get", "--raw", f"/apis/{API}/namespaces/{k8s_namespace}/daskawsclusters/x/scale"
        ).stdout
    )
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 5


def test_status_is_written_only_through_subresource(
    k8s: ControlPlane, dac_crd: Path, k8s_namespace: str
) -> None:
    ns = ("-n", k8s_namespace)
    k8s.kubectl("apply", "-f", "-", input=dac("x", k8s_namespace))
    before = get_json(k8s, "dac", "x", *ns)

    patch = json.dumps({"status": {"replicas": 3, "phase": "Running"}})
    k8s.kubectl("patch", "dac", "x", *ns, "--type=merge", "-p", patch)
    after = get_json(k8s, "dac", "x", *ns)
    assert after.get("status") == before.get("status")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

    both = json.dumps({"spec": {"workers": {"replicas": 7}}, "status": {"replicas": 3}})
    k8s.kubectl("patch", "dac", "x", *ns, "--subresource=status", "--type=merge", "-p", both)
    status_written = get_json(k8s, "dac", "x", *ns)
    assert status_written["status"]["replicas"] == 3
    assert status_written["spec"]["workers"]["replicas"] == 2  # spec ignored on /status


# --------------------------------------------------------------------- RBAC


def can_i(k8s: ControlPlane, kubeconfig: Path, *args: str) -> bool:
    result = k8s.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
    return result.stdout.strip() == "yes"


def test_service_account_rbac(k8s: ControlPlane, dac_crd: Path, k8s_namespace: str) -> None:
    ns = k8s_namespace
    kubeconfig = k8s.service_account_kubeconfig(ns, "operator")
    user = f"system:serviceaccount:{ns}:operator"
    whoami = json.loads(k8s.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert whoami["status"]["userInfo"]["username"] == user

    assert not can_i(k8s, kubeconfig, "list", CRD_NAME, "-n", ns)
    denied = k8s.kubectl("get", "dac", "-n", ns, kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert user in denied.stderr

    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "dac-reader", "namespace": ns},
        "rules": [
            {
                "apiGroups": ["daskaws.io"],
                "resources": ["daskawsclusters"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "dac-reader", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dac-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}],
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": [role, binding]}))  # fmt: skip
    wait_for(lambda: can_i(k8s, kubeconfig, "list", CRD_NAME, "-n", ns), 15, "the RoleBinding")
    k8s.kubectl("get", "dac", "-n", ns, kubeconfig=kubeconfig)
    # Exactly what the Role grants: no writes, nothing in other namespaces.
    assert not can_i(k8s, kubeconfig, "create", CRD_NAME, "-n", ns)
    assert not can_i(k8s, kubeconfig, "list", CRD_NAME, "-n", "default")
    other = k8s.kubectl("get", "secrets", "-n", ns, kubeconfig=kubeconfig, check=False)
    assert "Forbidden" in other.stderr


# ------------------------------------------------------- controller-manager


@pytest.fixture
def controllers(k8s: ControlPlane) -> ControlPlane:
    if not k8s.with_controller_manager:
        pytest.skip("kube-controller-manager is not part of this build")
    return k8s


def test_garbage_collection_of_owned_secret(
    controllers: ControlPlane, dac_crd: Path, k8s_namespace: str
) -> None:
    k8s, ns = controllers, k8s_namespace
    k8s.kubectl("apply", "-f", "-", input=dac("x", ns))
    owner = get_json(k8s, "dac", "x", "-n", ns)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "x-connection",
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": API,
                    "kind": "DaskAwsCluster",
                    "name": "x",
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "stringData": {"address": "tls://10.1.2.3:8786"},
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(secret))
    k8s.kubectl("delete", "dac", "x", "-n", ns)

    def gone() -> bool:
        result = k8s.kubectl("get", "secret", "x-connection", "-n", ns, check=False)
        return "NotFound" in result.stderr

    wait_for(gone, 120, "the garbage collector to delete the owned Secret")


def test_namespace_deletion_finishes(controllers: ControlPlane, dac_crd: Path) -> None:
    k8s = controllers
    ns = k8s.create_namespace(f"doomed-{os.getpid()}-{time.monotonic_ns() % 10**6}")
    k8s.kubectl("create", "configmap", "c", "-n", ns, "--from-literal=a=b")
    k8s.kubectl("apply", "-f", "-", input=dac("x", ns))
    k8s.kubectl("delete", "namespace", ns, "--timeout=120s", timeout=180)
    assert "NotFound" in k8s.kubectl("get", "namespace", ns, check=False).stderr


# ---------------------------------------------------------------------- CLI


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cli_runs_until_sigterm(k8s: ControlPlane, tmp_path: Path) -> None:
    directory = tmp_path / "cp"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "controlplane.py"), "--dir", str(directory),
         "--bin-dir", str(k8s.bin_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "control plane ready" in first, first
        children = _children(proc.pid)
        assert len(children) == (3 if k8s.with_controller_manager else 2)
        kubeconfig = directory / "kubeconfig"
        k8s.kubectl("get", "namespaces", kubeconfig=kubeconfig)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        wait_for(lambda: not any(_alive(pid) for pid in children), 5, "children to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
