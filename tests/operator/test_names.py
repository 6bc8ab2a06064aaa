"""Long object names: every derived Kubernetes name is valid and belongs to one object."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from dask_aws.controller.kube_names import (
    LABEL_VALUE,
    SUBDOMAIN,
    cluster_label_value,
    connection_secret_name,
)
from tests.fixtures.polling import wait_for
from tests.operator.helpers import apply, condition, event_reasons, get, manifest, ready

N240 = "s" * 120 + "." + "s" * 118 + "t"
NAMES = [
    "x" * 61 + "-y",  # 63: the longest label value kept as it is
    "x" * 62 + "-z",  # 64: cut at 63, the label value would end in '-'
    "p" * 236 + "q",  # 237: the longest name whose Secret is still <name>-dask-connection
    N240,
    "w" * 250 + "-q",  # 252: cut at 253, the Secret name would end in '-'
    N240 + "-dask-connect",  # 253: cut at 253, the Secret name was N240's
]


def test_derived_names_are_valid_unique_and_plain_when_they_fit() -> None:
    secrets = [connection_secret_name(n) for n in NAMES]
    labels = [cluster_label_value(n) for n in NAMES]
    assert len(set(secrets)) == len(set(labels)) == len(NAMES)
    for name, secret, label in zip(NAMES, secrets, labels, strict=True):
        assert len(secret) <= 253 and SUBDOMAIN.match(secret), secret
        assert len(label) <= 63 and LABEL_VALUE.match(label), label
        assert (secret == f"{name}-dask-connection") == (len(name) <= 237)
        assert (label == name) == (len(name) <= 63)


@pytest.mark.slow
def test_long_names_reach_ready_each_with_its_own_secret(
    k8s: Any, short_namespace: str, start_simulated_operator: Any
) -> None:
    ns = short_namespace
    start_simulated_operator(namespace=ns)
    for name in NAMES:
        apply(k8s, ns, manifest(name, workers={"replicas": 0, "cpu": 512, "memory": 1024}))
    uids = {name: ready(k8s, ns, name)["metadata"]["uid"] for name in NAMES}
    secrets = _secrets(k8s, ns)
    for name, uid in uids.items():
        obj = get(k8s, ns, name)
        assert obj is not None
        mine = [s for s in secrets if s["metadata"]["labels"]["daskaws.io/cluster-uid"] == uid]
        assert [s["metadata"]["name"] for s in mine] == [connection_secret_name(name)], name
        address = base64.b64decode(mine[0]["data"]["scheduler-address"]).decode()
        assert address == obj["status"]["schedulerAddress"], name
        assert mine[0]["metadata"]["annotations"]["daskaws.io/cluster"] == name
    # Deleting one object deletes its Secret only.
    k8s.kubectl("delete", "dac", NAMES[-1], "-n", ns, "--timeout=60s", timeout=90)
    gone = connection_secret_name(NAMES[-1])
    wait_for(
        lambda: gone not in {s["metadata"]["name"] for s in _secrets(k8s, ns)}, 30, "Secret gone"
    )
    left = {s["metadata"]["name"] for s in _secrets(k8s, ns)}
    assert left == {connection_secret_name(n) for n in NAMES[:-1]}


def _secrets(k8s: Any, ns: str) -> list[dict[str, Any]]:
    proc = k8s.kubectl(
        "get", "secrets", "-n", ns, "-l", "app.kubernetes.io/managed-by=dask-aws", "-o", "json"
    )
    return list(json.loads(proc.stdout)["items"])


NO_SECRETS_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: operator}
rules:
- {apiGroups: [daskaws.io], resources: [daskawsclusters], verbs: [list, watch, patch, delete]}
- {apiGroups: [daskaws.io], resources: [daskawspolicies], verbs: [list, watch]}
- {apiGroups: [daskaws.io], resources: [daskawsclusters/status], verbs: [patch]}
- {apiGroups: [""], resources: [events], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: operator}
subjects: [{kind: ServiceAccount, name: operator}]
"""
SECRETS_RULE = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "update"]}


@pytest.mark.slow
def test_a_secret_failure_costs_no_status_and_is_retried(
    k8s: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    kubeconfig = k8s.service_account_kubeconfig(ns, "operator")
    apply(k8s, ns, NO_SECRETS_ROLE)
    operator = start_simulated_operator(kubeconfig=kubeconfig)
    apply(k8s, ns, manifest("nosecret", workers={"replicas": 0, "cpu": 512, "memory": 1024}))
    obj = ready(k8s, ns, "nosecret")  # the status patch was written all the same
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "connection Secret nosecret-dask-connection could not be written" in message
    assert "HTTP 403" in message
    assert "ConnectionSecretFailed" in event_reasons(k8s, ns, "nosecret")
    # Allowed again: the next resync writes it.
    rule = json.dumps([{"op": "add", "path": "/rules/-", "value": SECRETS_RULE}])
    k8s.kubectl("patch", "role", "operator", "-n", ns, "--type=json", "-p", rule)
    wait_for(lambda: _secrets(k8s, ns), 30, "the Secret written at the next resync")
    assert "ConnectionSecretWritten" in event_reasons(k8s, ns, "nosecret")
    log = operator.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert f"{ns}/nosecret: ConnectionSecretFailed" in log
