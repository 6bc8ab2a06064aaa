"""Deletion that AWS refuses for a while: the object stays, says why, and finishes later."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import apply, event_reasons, events, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


def test_blocked_deletion_is_reported_then_completes(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    operator = start_operator(env={"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "2"})
    apply(k8s, ns, manifest("stubborn", workers={"replicas": 1, "cpu": 512, "memory": 1024}))
    uid = ready(k8s, ns, "stubborn")["metadata"]["uid"]
    local_aws.fail_next("ec2:DeleteSecurityGroup", 4, "5xx")  # two attempts of two tries
    k8s.kubectl("delete", "dac/stubborn", "-n", ns, "--wait=false")
    blocked = wait_for(
        lambda: (o := get(k8s, ns, "stubborn")) and o["status"].get("phase") == "Deleting" and o,
        60,
        "phase Deleting",
    )
    assert "DeleteSecurityGroup" in blocked["status"]["message"]
    assert "DeletionBlocked" in event_reasons(k8s, ns, "stubborn")
    # Events name the operator (`kubectl describe`'s From column), not the framework.
    sources = {
        ((e.get("source") or {}).get("component"), e.get("reportingComponent"))
        for e in events(k8s, ns, "stubborn")
    }
    assert sources == {("dask-aws-operator", "dask-aws-operator")}, sources
    wait_for(lambda: get(k8s, ns, "stubborn") is None, 120, "deletion to finish")
    assert tagged_resources(aws_for(local_aws.endpoint_url)[0], uid) == []
    metrics = operator.metrics()
    assert 'dask_aws_aws_calls_total{operation="DeleteSecurityGroup",outcome="ok"}' in metrics
    assert 'dask_aws_reconciles_total{kind="delete",result="error"}' in metrics
