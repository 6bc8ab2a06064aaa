"""GitOps health of a DaskAwsCluster, judged by the real tools' libraries on objects from the
real API server: kstatus (Flux's default, cli-utils), the shipped Argo CD Lua health script
and the shipped Flux healthCheckExprs (tests/k8s/cmd/kstatus runs all three).

No operator runs here: the test writes status through the status subresource the way the
operator does, one phase at a time."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from dask_aws.crd import crd
from dask_aws.status import ClusterStatus, Condition, ConditionType, Phase, set_condition
from tests.chart.helpers import CHART
from tests.operator.helpers import get, manifest

ARGOCD_LUA = CHART / "health" / "argocd-health.lua"
FLUX_EXPRS = CHART / "health" / "flux-health.yaml"
#: kstatus's verdict -> what the shipped Argo CD script and Flux expressions must say.
AGREE = {
    "Current": ("Healthy", "Current"),
    "InProgress": ("Progressing", "InProgress"),
    "Failed": ("Degraded", "Failed"),
    "Terminating": ("Progressing", "InProgress"),
}
Judge = Callable[[dict[str, Any]], dict[str, dict[str, str]]]


def test_status_default_reads_as_not_observed() -> None:
    status = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    observed = status["properties"]["observedGeneration"]
    assert status["default"] == {} and observed["default"] == 0 and not observed.get("nullable")
    # What the API server shows before the operator wrote anything parses as "never seen".
    fresh = ClusterStatus.lenient({"observedGeneration": 0, "phase": "Pending", "replicas": 0})
    assert fresh.observed_generation == 0 and fresh.phase is Phase.PENDING and not fresh.ready


@pytest.fixture
def judge(k8s: Any) -> Judge:
    binary = k8s.bin_dir / "kstatus"
    if not os.access(binary, os.X_OK):
        reason = f"{binary} missing: rebuild with tests/k8s/build.sh"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes", "on"}:
            pytest.fail(reason)
        pytest.skip(reason)

    def run(obj: dict[str, Any]) -> dict[str, dict[str, str]]:
        proc = subprocess.run(
            [str(binary), "-argocd", str(ARGOCD_LUA), "-flux", str(FLUX_EXPRS)],
            input=json.dumps(obj),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        (line,) = proc.stdout.splitlines()
        result: dict[str, dict[str, str]] = json.loads(line)
        return result

    return run


def _status(generation: int, ready: bool, reconciling: bool, stalled: bool) -> dict[str, Any]:
    """A status the way the operator's step writes it (its model, dumped with nulls)."""
    conditions: list[Condition] = []
    for type_, flag in (
        (ConditionType.READY, ready),
        (ConditionType.RECONCILING, reconciling),
        (ConditionType.STALLED, stalled),
    ):
        reason = f"Test{type_.value}{flag}"
        conditions = set_condition(conditions, type_, flag, reason, "set by the test", generation)
    status = ClusterStatus(
        phase=Phase.FAILED if stalled else Phase.RUNNING if ready else Phase.CREATING,
        conditions=conditions,
        observed_generation=generation,
    )
    return status.model_dump(mode="json", by_alias=True)


def _assert_verdict(result: dict[str, dict[str, str]], kstatus: str, what: str) -> None:
    verdicts = {tool: result[tool]["status"] for tool in ("kstatus", "argocd", "flux")}
    argocd, flux = AGREE[kstatus]
    assert verdicts == {"kstatus": kstatus, "argocd": argocd, "flux": flux}, (what, result)


def test_health_follows_status_phases(k8s: Any, k8s_namespace: str, judge: Judge) -> None:
    ns, name = k8s_namespace, "gitops"

    def kubectl(*args: str, input: str | None = None) -> str:
        return str(k8s.kubectl(*args, "-n", ns, input=input).stdout)

    def write_status(status: dict[str, Any]) -> None:
        patch = json.dumps({"status": status})
        kubectl("patch", "dac", name, "--subresource=status", "--type=merge", "-p", patch)

    def current() -> dict[str, Any]:
        obj = get(k8s, ns, name)
        assert obj is not None
        return obj

    # Freshly applied, no operator: the API server's status default makes it "not observed".
    created = json.loads(kubectl("create", "-f", "-", "-o", "json", input=manifest(name)))
    assert created["metadata"]["generation"] == 1
    assert created["status"]["observedGeneration"] == 0, created.get("status")
    fresh = current()
    assert fresh["status"]["observedGeneration"] == 0 and "conditions" not in fresh["status"]
    assert ClusterStatus.lenient(fresh["status"]).observed_generation == 0
    _assert_verdict(judge(fresh), "InProgress", "fresh object, no operator")

    # A manifest cannot claim health: the status subresource drops status on create.
    claim = yaml.safe_load(manifest("claims-ready"))
    claim["status"] = _status(1, ready=True, reconciling=False, stalled=False)
    claimed = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(claim)))
    assert claimed["status"]["observedGeneration"] == 0 and "conditions" not in claimed["status"]
    _assert_verdict(judge(claimed), "InProgress", "status in the manifest")

    phases = [
        ("Ready", _status(1, ready=True, reconciling=False, stalled=False), "Current"),
        ("Reconciling", _status(1, ready=False, reconciling=True, stalled=False), "InProgress"),
        ("Stalled", _status(1, ready=False, reconciling=False, stalled=True), "Failed"),
        ("not Ready yet", _status(1, ready=False, reconciling=False, stalled=False), "InProgress"),
        ("Ready again", _status(1, ready=True, reconciling=False, stalled=False), "Current"),
    ]
    for what, status, expected in phases:
        write_status(status)
        obj = current()
        assert obj["status"]["observedGeneration"] == 1
        _assert_verdict(judge(obj), expected, what)

    # A spec change the operator has not observed yet: Ready True is stale.
    kubectl("patch", "dac", name, "--type=merge", "-p", '{"spec":{"workers":{"replicas":3}}}')
    changed = current()
    assert changed["metadata"]["generation"] == 2 and changed["status"]["observedGeneration"] == 1
    _assert_verdict(judge(changed), "InProgress", "observedGeneration behind generation")
    write_status(_status(2, ready=True, reconciling=False, stalled=False))
    _assert_verdict(judge(current()), "Current", "generation 2 observed and Ready")

    # Being deleted (a finalizer holds it, as the operator's does): never healthy.
    kubectl("patch", "dac", name, "--type=merge", "-p", '{"metadata":{"finalizers":["test/x"]}}')
    kubectl("delete", "dac", name, "--wait=false")
    deleting = current()
    assert deleting["metadata"].get("deletionTimestamp")
    _assert_verdict(judge(deleting), "Terminating", "deletionTimestamp set")
    kubectl("patch", "dac", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def test_docs_point_at_the_shipped_checks() -> None:
    readme = (CHART / "README.md").read_text()
    assert "resource.customizations.health.daskaws.io_DaskAwsCluster" in readme
    assert "health/argocd-health.lua" in readme and "health/flux-health.yaml" in readme
