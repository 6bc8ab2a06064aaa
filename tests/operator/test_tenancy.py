"""DaskAwsPolicy on a real API server with the simulated local AWS: a namespace over its
cluster limit gets a Stalled QuotaExceeded cluster with nothing on AWS, and it proceeds
once another cluster is deleted; another namespace's worker limit clamps a scale; the
policies' status shows the exact usage; defaults land in what is created; an image
outside the allowlist is Stalled."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml

from dask_aws.aws.clients import Aws
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, apply, condition, events, get, manifest, ready

pytestmark = [pytest.mark.k8s]


def policy(name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "daskaws.io/v1alpha1",
            "kind": "DaskAwsPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def used(k8s: Any, ns: str, name: str) -> dict[str, Any]:
    proc = k8s.kubectl("get", "dap", name, "-n", ns, "-o", "json")
    return dict((json.loads(proc.stdout).get("status") or {}).get("used") or {})


def stalled(k8s: Any, ns: str, name: str, reason: str) -> dict[str, Any] | None:
    obj = get(k8s, ns, name)
    c = condition(obj, "Stalled")
    return obj if c and c["status"] == "True" and c["reason"] == reason else None


def test_a_cluster_limit_blocks_and_frees_and_a_worker_limit_clamps(
    k8s: Any, local_aws_simulated: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    other = k8s.create_namespace(f"{ns[:50]}-b")
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    apply(k8s, ns, policy("team-a", limits={"clusters": 1}))
    apply(k8s, other, policy("team-b", limits={"workers": 3}))
    operator = start_simulated_operator(namespace=f"{ns},{other}")
    small = {"replicas": 1, **SMALL}
    apply(k8s, ns, manifest("first", workers=small))
    first = ready(k8s, ns, "first")
    apply(k8s, ns, manifest("second", workers=small))
    blocked = wait_for(
        lambda: stalled(k8s, ns, "second", "QuotaExceeded"), 60, "second QuotaExceeded"
    )
    message = condition(blocked, "Stalled")["message"]  # type: ignore[index]
    assert "clusters" in message and "team-a" in message, message
    assert tagged_resources(aws, blocked["metadata"]["uid"]) == []  # nothing created
    wait_for(lambda: used(k8s, ns, "team-a").get("clusters") == 1, 60, "team-a used 1 cluster")

    apply(k8s, other, manifest("big", workers={"replicas": 2, **SMALL}))
    ready(k8s, other, "big")
    k8s.kubectl("scale", "dac/big", "-n", other, "--replicas=5")

    def clamped() -> dict[str, Any] | None:
        obj = get(k8s, other, "big")
        workers = ((obj or {}).get("status") or {}).get("workers") or {}
        return obj if workers.get("desired") == 3 and workers.get("running") == 3 else None

    obj = wait_for(clamped, 60, "big clamped to 3 workers")
    assert "team-b" in (obj["status"].get("message") or ""), obj["status"]
    said = [e["reason"] for e in events(k8s, other, "big")]
    assert "ScaleClamped" in said, said
    wait_for(lambda: used(k8s, other, "team-b").get("workers") == 3, 60, "team-b used 3")
    # The dashboard's quota panel: usage and limit by namespace and limit key.
    scraped = operator.metrics()
    assert f'dask_aws_namespace_quota_used{{namespace="{other}",resource="workers"}} 3.0' in scraped
    assert (
        f'dask_aws_namespace_quota_limit{{namespace="{other}",resource="workers"}} 3.0' in scraped
    )

    k8s.kubectl("delete", "dac/first", "-n", ns, "--timeout=120s", timeout=150)
    ready(k8s, ns, "second", timeout=90)  # the freed place is taken
    wait_for(lambda: used(k8s, ns, "team-a").get("clusters") == 1, 60, "team-a used 1 again")
    for namespace, name in ((ns, "second"), (other, "big")):
        k8s.kubectl("delete", f"dac/{name}", "-n", namespace, "--timeout=120s", timeout=150)
    assert tagged_resources(aws, first["metadata"]["uid"]) == []


def test_defaults_land_in_what_is_created_and_allowlists_stall(
    k8s: Any, local_aws_simulated: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    apply(
        k8s,
        ns,
        policy(
            "defaults",
            allowedImagePrefixes=["ghcr.io/dask/"],
            defaults={"tags": {"team": "blue"}, "logRetentionDays": 14},
        ),
    )
    start_simulated_operator(namespace=ns)
    apply(k8s, ns, manifest("tagged", workers={"replicas": 1, **SMALL}))
    obj = ready(k8s, ns, "tagged")
    status = obj["status"]["aws"]
    definition = aws.ecs.describe_task_definition(
        taskDefinition=status["workerTaskDefinitionArn"], include=["TAGS"]
    )
    assert {"key": "team", "value": "blue"} in definition["tags"]
    # Cost allocation: each task carries the team's tag and its namespace and owner.
    arns = aws.ecs.list_tasks(cluster=status["clusterArn"], startedBy=obj["metadata"]["uid"])
    tasks = aws.ecs.describe_tasks(
        cluster=status["clusterArn"], tasks=arns["taskArns"], include=["TAGS"]
    )["tasks"]
    assert len(tasks) == 2  # the scheduler and one worker
    for task in tasks:
        tags = {t["key"]: t["value"] for t in task["tags"]}
        assert tags["team"] == "blue" and tags["dask-aws.io/namespace"] == ns, tags
        assert tags["dask-aws.io/owner"] == f"{ns}/tagged", tags
    (group,) = aws.logs.describe_log_groups(logGroupNamePrefix=status["logGroup"])["logGroups"]
    assert group["retentionInDays"] == 14
    apply(
        k8s,
        ns,
        manifest("foreign", image="docker.io/someone/dask:1", workers={"replicas": 1, **SMALL}),
    )
    blocked = wait_for(lambda: stalled(k8s, ns, "foreign", "Forbidden"), 60, "foreign Forbidden")
    message = condition(blocked, "Stalled")["message"]  # type: ignore[index]
    assert "docker.io/someone/dask:1" in message and "defaults" in message, message
    assert tagged_resources(aws, blocked["metadata"]["uid"]) == []
    for name in ("tagged", "foreign"):
        k8s.kubectl("delete", f"dac/{name}", "-n", ns, "--timeout=120s", timeout=150)


ACCOUNT_B = "222222222222"


def test_a_namespace_whose_policy_names_a_role_in_another_account_lives_there(
    k8s: Any, local_aws_simulated: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    local = local_aws_simulated
    role = local.create_account_role(ACCOUNT_B, f"dask-{ns[-20:]}", external_id="team-b-42")
    in_a, _ = aws_for(local.endpoint_url)
    kwargs = local.account_client_kwargs(ACCOUNT_B)
    in_b = Aws(
        session=boto3.Session(
            aws_access_key_id=kwargs["aws_access_key_id"],
            aws_secret_access_key=kwargs["aws_secret_access_key"],
        ),
        region="us-east-1",
        endpoint_url=local.endpoint_url,
    )
    apply(k8s, ns, policy("account-b", aws={"roleArn": role, "externalId": "team-b-42"}))
    start_simulated_operator(namespace=ns)
    apply(k8s, ns, manifest("elsewhere", workers={"replicas": 1, **SMALL}))
    obj = ready(k8s, ns, "elsewhere")
    uid, recorded = obj["metadata"]["uid"], obj["status"]["aws"]
    assert f":{ACCOUNT_B}:" in recorded["clusterArn"] and recorded["roleArn"] == role
    assert tagged_resources(in_a, uid) == []  # nothing in the operator's account
    assert tagged_resources(in_b, uid)  # everything in B
    # The connection Secret was written from B's certificates secret.
    k8s.kubectl("get", "secret", "elsewhere-dask-connection", "-n", ns)
    k8s.kubectl("delete", "dac/elsewhere", "-n", ns, "--timeout=120s", timeout=150)
    assert tagged_resources(in_b, uid) == [] and tagged_resources(in_a, uid) == []


NO_POLICIES_ROLE = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: operator}
rules:
- {apiGroups: [daskaws.io], resources: [daskawsclusters], verbs: [list, watch, patch, delete]}
- {apiGroups: [daskaws.io], resources: [daskawsclusters/status], verbs: [patch]}
- {apiGroups: [""], resources: [events, secrets], verbs: [create, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: operator}
subjects: [{kind: ServiceAccount, name: operator}]
"""


def test_an_operator_that_cannot_read_policies_does_not_run_without_them(
    k8s: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    kubeconfig = k8s.service_account_kubeconfig(ns, "operator")
    apply(k8s, ns, NO_POLICIES_ROLE)
    with pytest.raises(RuntimeError) as failed:
        start_simulated_operator(kubeconfig=kubeconfig)
    assert "cannot start: the operator may not list daskawspolicies.daskaws.io" in str(failed.value)
    assert "Traceback" not in str(failed.value)
