"""The ECS cluster: ours (created, deleted with the owner) or the user's clusterArn (only used)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.errors import PermanentError


def observe(aws: Aws, target: Target) -> Found | None:
    if target.spec.cluster_arn:
        where = target.spec.cluster_arn.split(":")[3]
        if where != aws.region:
            raise PermanentError(
                "ClusterInAnotherRegion",
                f"clusterArn {target.spec.cluster_arn} is in {where}, the tasks would run in "
                f"{aws.region}: set spec.region to {where}",
            )
        reply = aws.ecs.describe_clusters(clusters=[target.spec.cluster_arn])
        active = [c for c in reply["clusters"] if c.get("status") == "ACTIVE"]
        if not active:
            raise PermanentError(
                "ClusterNotFound",
                f"clusterArn {target.spec.cluster_arn} was not found or is not ACTIVE "
                f"in {aws.region}",
            )
        return Found(id=active[0]["clusterArn"], ours=False)
    reply = aws.ecs.describe_clusters(clusters=[target.names.ecs_cluster], include=["TAGS"])
    for cluster in reply["clusters"]:
        if cluster.get("status") != "ACTIVE":
            continue
        if not tags.is_owned_by(tags.from_list(cluster.get("tags")), target.owner):
            raise PermanentError(
                "NameConflict",
                f"an ECS cluster named {target.names.ecs_cluster} exists and is not ours",
            )
        return Found(id=cluster["clusterArn"], ours=True)
    return None


def ensure(aws: Aws, target: Target) -> Found:
    # CreateCluster is idempotent for an existing name, so a crash before we recorded
    # anything simply returns the same cluster.
    reply = aws.ecs.create_cluster(
        clusterName=target.names.ecs_cluster,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        tags=tags.as_ecs(tags.ownership(target.owner, target.spec.tags)),  # type: ignore[arg-type]
    )
    return Found(id=reply["cluster"]["clusterArn"], ours=True)


def tag(aws: Aws, found: Found, values: Mapping[str, str]) -> None:
    aws.ecs.tag_resource(resourceArn=found.id, tags=tags.as_ecs(values))  # type: ignore[arg-type]


def delete(aws: Aws, found: Found) -> None:
    if not found.ours:
        return
    with contextlib.suppress(aws.ecs.exceptions.ClusterNotFoundException):
        aws.ecs.delete_cluster(cluster=found.id)
