"""Autoscaling, idle clusters and deletionPolicy Retain, through the operator."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from dask_aws.aws.found import Target
from dask_aws.aws.tags import RETAINED
from dask_aws.engine.delete import delete
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import operator_client
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, apply, event_reasons, get, manifest, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


def _status(k8s: Any, ns: str, name: str) -> dict[str, Any]:
    return dict((get(k8s, ns, name) or {}).get("status") or {})


def test_autoscaler_follows_the_adaptive_target_within_bounds(
    k8s: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    start_operator()
    apply(
        k8s,
        ns,
        manifest(
            "elastic",
            workers={"replicas": 3, **SMALL},
            autoscaling={"minimum": 1, "maximum": 4, "cooldownSeconds": 0},
        ),
    )
    assert ready(k8s, ns, "elastic")["status"]["schedulerAddress"].startswith("tls://")
    # Idle: the target falls to the minimum, at most 25% (>= 1 worker) a step.
    seen: list[int] = []

    def shrunk() -> bool:
        desired = _status(k8s, ns, "elastic").get("workers", {}).get("desired")
        if desired is not None and (not seen or seen[-1] != desired):
            seen.append(desired)
        return desired == 1

    wait_for(shrunk, 90, "scale-in to the minimum")
    assert all(a - b <= 1 for a, b in itertools.pairwise(seen)), seen
    with operator_client(k8s, ns, "elastic", timeout=30) as client:
        futures = client.map(time.sleep, [0.5] * 400, pure=False)
        wait_for(
            lambda: _status(k8s, ns, "elastic").get("workers", {}).get("desired") == 4,
            90,
            "scale-out to the maximum",
        )
        client.gather(futures)
    k8s.kubectl("delete", "dac/elastic", "-n", ns, "--timeout=120s", timeout=150)


def test_idle_cluster_is_deleted(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    start_operator()
    apply(
        k8s,
        ns,
        manifest(
            "sleepy",
            workers={"replicas": 1, **SMALL},
            scheduler={**SMALL, "idleTimeoutSeconds": 3, "idleAction": "Delete"},
        ),
    )
    uid = wait_for(lambda: (o := get(k8s, ns, "sleepy")) and o["metadata"]["uid"], 30, "uid")
    wait_for(lambda: get(k8s, ns, "sleepy") is None, 120, "the idle cluster to delete itself")
    reasons = event_reasons(k8s, ns, "sleepy")
    assert "WorkersStarted" in reasons and "IdleDeleted" in reasons  # it ran, then idled
    assert tagged_resources(aws_for(local_aws.endpoint_url)[0], uid) == []


def test_idle_cluster_scales_to_zero_and_back(
    k8s: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    start_operator()
    apply(
        k8s,
        ns,
        manifest(
            "napper",
            workers={"replicas": 2, **SMALL},
            scheduler={**SMALL, "idleTimeoutSeconds": 3, "idleAction": "ScaleToZero"},
        ),
    )
    ready(k8s, ns, "napper")
    wait_for(
        lambda: (
            _status(k8s, ns, "napper").get("replicas") == 0
            and _status(k8s, ns, "napper").get("workers", {}).get("desired") == 0
        ),
        90,
        "scale to zero",
    )
    with operator_client(k8s, ns, "napper", timeout=30) as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=120) == 6  # workers came back
        busy = client.submit(time.sleep, 60, pure=False)  # not idle while this runs
        wait_for(lambda: _status(k8s, ns, "napper").get("replicas") == 2, 90, "2 workers again")
        client.cancel(busy)
    k8s.kubectl("delete", "dac/napper", "-n", ns, "--timeout=120s", timeout=150)


def test_retain_keeps_aws_resources_and_marks_them(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    start_operator()
    apply(k8s, ns, manifest("keeper", deletionPolicy="Retain"))
    obj = ready(k8s, ns, "keeper")
    k8s.kubectl("delete", "dac/keeper", "-n", ns, "--timeout=60s", timeout=90)
    assert get(k8s, ns, "keeper") is None
    assert "Retained" in event_reasons(k8s, ns, "keeper")
    aws, _ = aws_for(local_aws.endpoint_url)
    uid = obj["metadata"]["uid"]
    left = tagged_resources(aws, uid)
    assert obj["status"]["aws"]["clusterArn"] in left
    group = obj["status"]["aws"]["securityGroupId"]
    tags = aws.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["Tags"]
    assert {"Key": RETAINED, "Value": "true"} in tags
    # Clean up what was retained, as an administrator would, so the session leaks nothing.
    spec = DaskAwsClusterSpec.model_validate(obj["spec"])
    owner = Owner(uid=uid, name="keeper", namespace=ns)
    target = Target(owner, spec.model_copy(update={"deletion_policy": "Delete"}))
    assert delete(aws, target).done
    assert tagged_resources(aws, uid) == []
