"""`dask-aws gc` collects only Python-owned clusters whose owner is gone."""

from __future__ import annotations

import io
import time
import uuid

from dask_aws.aws import tags
from dask_aws.aws.found import Target
from dask_aws.cluster import gc
from dask_aws.engine.delete import delete
from dask_aws.local import LocalAws
from dask_aws.names import Owner
from dask_aws.spec import DaskAwsClusterSpec
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import converge
from tests.fixtures.leaks import tagged_resources

SMALL_SPEC = {
    "scheduler": {"cpu": 512, "memory": 1024},
    "workers": {"replicas": 1, "cpu": 512, "memory": 1024},
}


def _python_owned(kind: str, heartbeat: float, host: str = "elsewhere") -> Target:
    labels = ((tags.HOST, host), (tags.PROCESS, "1:1"), (tags.HEARTBEAT, str(int(heartbeat))))
    owner = Owner(str(uuid.uuid4()), f"gc-{kind.lower()}", kind=kind, labels=labels)
    return Target(owner, DaskAwsClusterSpec.model_validate(SMALL_SPEC))


def test_gc_collects_only_stale_python_owners(local_aws_simulated: LocalAws) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    stale = _python_owned("FargateCluster", time.time() - 3600)
    fresh = _python_owned("ECSCluster", time.time())
    operator_owned = Target(
        Owner(str(uuid.uuid4()), "gc-operator", namespace="team-a"),  # kind DaskAwsCluster
        DaskAwsClusterSpec.model_validate(SMALL_SPEC),
    )
    for target in (stale, fresh, operator_owned):
        converge(aws, target)
    uids = {t.owner.uid for t in (stale, fresh, operator_owned)}
    before = {uid: sorted(tagged_resources(aws, uid)) for uid in uids}
    assert all(before.values())

    report = io.StringIO()
    assert gc.collect(aws, yes=False, stale_after=600, only=uids, out=report) == 0
    text = report.getvalue()
    assert f"gone  FargateCluster gc-fargatecluster ({stale.owner.uid})" in text
    assert "no heartbeat on elsewhere for" in text
    assert f"keep  ECSCluster gc-ecscluster ({fresh.owner.uid}): heartbeat on elsewhere" in text
    assert f"skip  DaskAwsCluster team-a/gc-operator ({operator_owned.owner.uid})" in text
    assert "dry run: 1 gone owner(s)" in text
    assert {uid: sorted(tagged_resources(aws, uid)) for uid in uids} == before  # changed nothing

    report = io.StringIO()
    assert gc.collect(aws, yes=True, stale_after=600, only=uids, out=report) == 0
    assert f"deleted FargateCluster gc-fargatecluster ({stale.owner.uid})" in report.getvalue()
    assert tagged_resources(aws, stale.owner.uid) == []
    assert sorted(tagged_resources(aws, fresh.owner.uid)) == before[fresh.owner.uid]
    assert (
        sorted(tagged_resources(aws, operator_owned.owner.uid)) == before[operator_owned.owner.uid]
    )
    for target in (fresh, operator_owned):
        assert delete(aws, target).done


def test_gc_reconstructs_the_owner_of_a_shared_cluster(local_aws_simulated: LocalAws) -> None:
    """Tasks in the user's cluster_arn are found through the ecs-cluster tag and stopped;
    the user's cluster itself is left alone."""
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    shared = aws.ecs.create_cluster(
        clusterName=f"shared-{uuid.uuid4().hex[:8]}", capacityProviders=["FARGATE"]
    )["cluster"]["clusterArn"]
    labels = (
        (tags.HOST, "elsewhere"),
        (tags.HEARTBEAT, "1"),
        (tags.ECS_CLUSTER, shared.rsplit("/", 1)[1]),
    )
    owner = Owner(str(uuid.uuid4()), "gc-shared", kind="FargateCluster", labels=labels)
    target = Target(owner, DaskAwsClusterSpec.model_validate({**SMALL_SPEC, "clusterArn": shared}))
    converge(aws, target)
    assert aws.ecs.list_tasks(cluster=shared, startedBy=owner.uid)["taskArns"]
    assert gc.collect(aws, yes=True, stale_after=60, only={owner.uid}, out=io.StringIO()) == 0
    assert tagged_resources(aws, owner.uid) == []
    assert aws.ecs.describe_clusters(clusters=[shared])["clusters"][0]["status"] == "ACTIVE"
    aws.ecs.delete_cluster(cluster=shared)
