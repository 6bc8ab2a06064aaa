"""The Helm chart: lint, render in both RBAC modes, accepted by the real API server,
bad values rejected by values.schema.json, the CRD in sync with crds/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dask_aws.controller.config import OperatorConfig
from tests.chart.helpers import CHART, REPO_ROOT, documents, find, one, render
from tests.k8s.controlplane import CommandError

ROLE_ARN = "arn:aws:iam::123456789012:role/dask-aws-operator"
IRSA = "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn"
SERVICE_MONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors,
          singular: servicemonitor}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_chart_crds_are_those_of_crds() -> None:
    names = sorted(p.name for p in (REPO_ROOT / "crds").iterdir())
    assert names == ["daskawscluster.yaml", "daskawsjob.yaml", "daskawspolicy.yaml"]
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == names
    for name in names:
        chart_crd, source = CHART / "crds" / name, REPO_ROOT / "crds" / name
        assert chart_crd.read_bytes() == source.read_bytes(), (
            f"the chart's CRD differs from {source}: cp {source} {chart_crd}"
        )


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "watchNamespaces={team-a,team-b}"],
        ["--set", "metrics.service.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"],
    ],
    ids=["cluster-wide", "namespaced", "metrics"],
)
def test_helm_lint_is_clean(k8s: Any, values: list[str]) -> None:
    proc = k8s.helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in _container(docs)["env"]}


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


NAMESPACED_RULES = {
    ("daskaws.io", "daskawsclusters", "list"),
    ("daskaws.io", "daskawsclusters", "watch"),
    ("daskaws.io", "daskawsclusters", "patch"),
    ("daskaws.io", "daskawsclusters", "delete"),
    ("daskaws.io", "daskawsclusters", "create"),  # a DaskAwsJob's own cluster
    ("daskaws.io", "daskawsclusters/status", "patch"),
    ("daskaws.io", "daskawsclusters/finalizers", "update"),
    ("daskaws.io", "daskawsjobs", "list"),
    ("daskaws.io", "daskawsjobs", "watch"),
    ("daskaws.io", "daskawsjobs", "patch"),
    ("daskaws.io", "daskawsjobs", "delete"),  # ttlSecondsAfterFinished
    ("daskaws.io", "daskawsjobs/status", "patch"),
    ("daskaws.io", "daskawsjobs/finalizers", "update"),  # the job's cluster's blockOwnerDeletion
    ("daskaws.io", "daskawspolicies", "list"),
    ("daskaws.io", "daskawspolicies", "watch"),
    ("daskaws.io", "daskawspolicies/status", "patch"),
    ("", "events", "create"),
    ("", "secrets", "create"),
    ("", "secrets", "update"),
    ("", "secrets", "delete"),
}


def test_default_render_is_cluster_wide_and_hardened(k8s: Any) -> None:
    # The roles for people are their own test (tenant_roles).
    docs = render(k8s, "--set", f"{IRSA}={ROLE_ARN}", "--set", "rbac.tenantRoles=false")
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",  # the Grafana dashboard
        "Deployment",
        "ServiceAccount",
    ]
    account = one(docs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert _rules(one(docs, "ClusterRole")) == NAMESPACED_RULES
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "dask-aws"}
    ]

    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(docs)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "probe": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "probe"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["args"] == ["--metrics-port=8080", "--probe-port=8081", "--bind=0.0.0.0"]
    assert container["image"] == "dask-aws-operator:0.1.0"
    assert _env(docs)["DASK_AWS_NAMESPACES"] == ""


def test_namespaced_render_has_roles_only_in_watched_namespaces(k8s: Any) -> None:
    docs = render(
        k8s, "--set", "watchNamespaces={team-a,team-b}", "--set", "rbac.tenantRoles=false"
    )
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert _rules(role) == NAMESPACED_RULES
    bindings = find(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    # Nothing cluster-scoped: the operator runs with kopf's scanning off.
    assert find(docs, "ClusterRole") == [] and find(docs, "ClusterRoleBinding") == []
    assert _env(docs)["DASK_AWS_NAMESPACES"] == "team-a,team-b"


def test_operator_values_become_its_environment(k8s: Any) -> None:
    docs = render(
        k8s,
        "--set",
        "operator.region=eu-west-1",
        "--set",
        "operator.resyncSeconds=30",
        "--set",
        "operator.jobBackoffSeconds=3",
        "--set",
        "operator.driftSeconds=900",
        "--set",
        "operator.maxWorkers=200",
        "--set",
        "operator.requireTls=true",
        "--set",
        "operator.allowedClusterArns={arn:aws:ecs:*:*:cluster/team-*}",
        "--set",
        "operator.allowedRoleArns={arn:aws:iam::*:role/team-*,arn:aws:iam::*:role/dask-*}",
        "--set",
        "operator.allowedImagePrefixes={ghcr.io/dask/}",
        "--set",
        "operator.verbose=true",
        "--set",
        "image.digest=sha256:" + "a" * 64,
    )
    env = _env(docs)
    assert env["DASK_AWS_REGION"] == env["AWS_REGION"] == "eu-west-1"
    assert env["DASK_AWS_RESYNC_SECONDS"] == "30"
    assert OperatorConfig.from_env(env).drift_seconds == 900
    assert OperatorConfig.from_env(env).job_backoff_seconds == 3
    assert env["DASK_AWS_MAX_WORKERS"] == "200"
    assert OperatorConfig.from_env(env).require_tls
    assert env["DASK_AWS_ALLOWED_CLUSTER_ARNS"] == "arn:aws:ecs:*:*:cluster/team-*"
    assert (
        env["DASK_AWS_ALLOWED_ROLE_ARNS"] == "arn:aws:iam::*:role/team-*,arn:aws:iam::*:role/dask-*"
    )
    assert env["DASK_AWS_ALLOWED_IMAGE_PREFIXES"] == "ghcr.io/dask/"
    container = _container(docs)
    assert "--verbose" in container["args"]
    assert container["image"] == "dask-aws-operator@sha256:" + "a" * 64

    config = OperatorConfig.from_env(env)
    assert config.region == "eu-west-1" and config.max_workers == 200
    assert config.resync_seconds == 30.0 and config.namespaces == []
    assert config.allowed_role_arns == ["arn:aws:iam::*:role/team-*", "arn:aws:iam::*:role/dask-*"]
    defaults = OperatorConfig.from_env(_env(render(k8s)))
    assert defaults.region is None and defaults.max_workers == 1000
    assert not defaults.require_tls
    assert defaults.allowed_image_prefixes == [] and defaults.resync_seconds == 60.0


def test_metrics_service_and_service_monitor(k8s: Any) -> None:
    docs = render(
        k8s, "--set", "metrics.service.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"
    )
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    deployment_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= deployment_labels.items()
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def _dry_run(k8s: Any, docs: list[dict[str, Any]]) -> str:
    text = yaml.safe_dump_all(docs)
    return str(k8s.kubectl("apply", "--dry-run=server", "-f", "-", input=text).stdout)


def test_rendered_manifests_are_accepted_by_the_api_server(k8s: Any, tmp_path: Path) -> None:
    k8s.kubectl("apply", "-f", "-", input=SERVICE_MONITOR_CRD)
    k8s.kubectl("wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com")
    names = ["chart-dry-run", "chart-team-a", "chart-team-b"]
    for name in names:
        if k8s.kubectl("get", "namespace", name, check=False).returncode != 0:
            k8s.create_namespace(name)
    renders = {
        "cluster-wide": render(k8s, "--set", f"{IRSA}={ROLE_ARN}", namespace=names[0]),
        "namespaced": render(
            k8s, "--set", "watchNamespaces={chart-team-a,chart-team-b}", namespace=names[0]
        ),
        "metrics": render(
            k8s,
            "--set",
            "metrics.service.enabled=true",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            namespace=names[0],
        ),
    }
    for mode, docs in renders.items():
        out = _dry_run(k8s, docs)
        assert out.count("(server dry run)") == len(docs), f"{mode}:\n{out}"
    # The CRDs from the chart's crds/ directory too (helm install applies them first).
    for path in sorted((CHART / "crds").glob("*.yaml")):
        assert "(server dry run)" in _dry_run(k8s, documents(path.read_text())), path.name


def _rejected(k8s: Any, *values: str) -> str:
    with pytest.raises(CommandError) as info:
        render(k8s, *values)
    return str(info.value.stderr)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "watchNamespaces={Team_A}"], "watchNamespaces/0"),
        (["--set", "operator.resyncSeconds=0"], "resyncSeconds"),
        (["--set", "operator.maxWorkers=-1"], "maxWorkers"),
        (["--set", "operator.region=mars"], "region"),
        (["--set", "operator.allowedRoleArns={not-an-arn}"], "allowedRoleArns/0"),
        (["--set", "operator.allowedImagePrefixes={a b}"], "allowedImagePrefixes/0"),
        (["--set", "operator.extraEnv[0].name=DASK_AWS_REGION"], "extraEnv/0/name"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "image.digest=latest"], "digest"),
        (["--set", "ports.probe=70000"], "probe"),
        (["--set", "securityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem"),
        (["--set", "securityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
        (["--set", "podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
        (["--set", "securityContext.capabilities.add={NET_ADMIN}"], "capabilities"),
        (["--set", "replicaCount=2"], "replicaCount"),
        (["--set", f"{IRSA}=my-role"], "role-arn"),
        (["--set", "metrics.serviceMonitor.interval=often"], "interval"),
        (
            ["--set", "serviceAccount.create=false"],
            "serviceAccount.name is required when serviceAccount.create is false",
        ),
        (
            ["--set", "metrics.serviceMonitor.enabled=true"],
            "metrics.serviceMonitor.enabled needs metrics.service.enabled",
        ),
    ],
)
def test_bad_values_are_rejected_with_a_message(k8s: Any, values: list[str], message: str) -> None:
    assert message in _rejected(k8s, *values)


def test_helm_lint_reports_schema_errors(k8s: Any) -> None:
    proc = k8s.helm("lint", str(CHART), "--set", "operator.maxWorkers=lots", check=False)
    assert proc.returncode != 0
    assert "maxWorkers" in proc.stdout + proc.stderr


def test_notes_tell_what_to_do_next(k8s: Any) -> None:
    # helm template leaves NOTES.txt out; install --dry-run=client renders it.
    out = k8s.helm(
        "install", "rel", str(CHART), "-n", "dask-aws", "--dry-run=client",
        "--set", "watchNamespaces={team-a}",
    ).stdout  # fmt: skip
    assert "dask-aws iam-policy --mode create-all" in out
    assert "eks\\.amazonaws\\.com/role-arn" in out  # how to set IRSA, since none is set
    assert "kubectl wait dac/demo -n team-a --for=condition=Ready" in out
    with_role = k8s.helm(
        "install", "rel", str(CHART), "-n", "dask-aws", "--dry-run=client",
        "--set", f"{IRSA}={ROLE_ARN}",
    ).stdout  # fmt: skip
    assert f"assumes {ROLE_ARN} (IRSA)" in with_role
    assert "system:serviceaccount:dask-aws:rel-dask-aws-operator" in with_role
