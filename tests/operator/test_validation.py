"""Bad input: the API server rejects what it can; the rest is Stalled with a clear message;
guardrails forbid what the platform team did not allow. The operator never crash-loops."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import apply, condition, get, manifest

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

REJECTED = [
    ({"workers": {"replicas": -1}}, "spec.workers.replicas"),
    ({"workers": {"cpu": 256, "memory": 30720}}, "cpu/memory is not a Fargate task size"),
    ({"workers": {"gpu": 1}}, "workers.gpu needs launchType EC2"),
    ({"autoscaling": {"minimum": 5, "maximum": 2}}, "minimum must not exceed maximum"),
    ({"launchType": "LAMBDA"}, 'Unsupported value: "LAMBDA"'),
]


@pytest.mark.parametrize(("spec", "message"), REJECTED)
def test_api_server_rejects_bad_specs_at_apply(
    k8s: Any, k8s_namespace: str, spec: dict[str, Any], message: str
) -> None:
    text = manifest("bad", **spec)
    proc = k8s.kubectl("apply", "-n", k8s_namespace, "-f", "-", input=text, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def _stalled(k8s: Any, ns: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        c = condition(get(k8s, ns, name), "Stalled")
        return c if c and c["status"] == "True" else None

    return wait_for(check, 60, f"{name} Stalled")


def test_stalled_with_message_and_no_crash_loop(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    operator = start_operator(
        env={
            "DASK_AWS_ALLOWED_CLUSTER_ARNS": "arn:aws:ecs:us-east-1:123456789012:cluster/team-*",
            "DASK_AWS_REQUIRE_TLS": "true",
        }
    )
    foreign = "arn:aws:ecs:us-east-1:123456789012:cluster/finance-prod"
    apply(k8s, ns, manifest("outside", clusterArn=foreign))
    stalled = _stalled(k8s, ns, "outside")
    assert stalled["reason"] == "Forbidden" and "allowedClusterArns" in stalled["message"]
    obj = get(k8s, ns, "outside")
    assert obj and obj["status"]["phase"] == "Failed"
    assert tagged_resources(aws_for(local_aws.endpoint_url)[0], obj["metadata"]["uid"]) == []

    missing = "arn:aws:ecs:us-east-1:123456789012:cluster/team-gone"
    apply(k8s, ns, manifest("ghost", clusterArn=missing))
    stalled = _stalled(k8s, ns, "ghost")
    assert stalled["reason"] == "ClusterNotFound" and "team-gone" in stalled["message"]

    # The platform forbids opting out of mutual TLS: nothing is created.
    apply(k8s, ns, manifest("plain", tls={"enabled": False}))
    stalled = _stalled(k8s, ns, "plain")
    assert stalled["reason"] == "Forbidden" and "requireTls" in stalled["message"]
    plain = get(k8s, ns, "plain")
    assert (
        plain
        and tagged_resources(aws_for(local_aws.endpoint_url)[0], plain["metadata"]["uid"]) == []
    )

    # A spec change un-stalls: the fixed object is reconciled at once.
    apply(k8s, ns, manifest("outside"))
    wait_for(
        lambda: (c := condition(get(k8s, ns, "outside"), "Ready")) and c["status"] == "True",
        120,
        "outside Ready after the fix",
    )
    for name in ("outside", "ghost", "plain"):
        k8s.kubectl("delete", "dac", name, "-n", ns, "--timeout=120s", timeout=150)
    assert operator.proc is not None and operator.proc.poll() is None  # still running
    assert operator.healthz() == 200
