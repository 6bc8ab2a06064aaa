"""What the user brought (cluster, roles, security group, log group) is used, never changed."""

from __future__ import annotations

import json
from typing import Any

from dask_aws.aws.iam_roles import TRUST_POLICY as TRUST
from dask_aws.aws.tags import RETAINED
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import converge, target
from tests.fixtures.leaks import tagged_resources


def test_adopted_cluster_and_roles_survive_delete(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    cluster_arn = aws.ecs.create_cluster(clusterName="platform-shared")["cluster"]["clusterArn"]
    execution = aws.iam.create_role(RoleName="team-exec", AssumeRolePolicyDocument=TRUST)
    task = aws.iam.create_role(RoleName="team-task", AssumeRolePolicyDocument=TRUST)
    aws.iam.put_role_policy(
        RoleName="team-task",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    aws.logs.create_log_group(logGroupName="/platform/dask")
    tgt = target(
        "adopter",
        clusterArn=cluster_arn,
        iam={"executionRoleArn": execution["Role"]["Arn"], "taskRoleArn": task["Role"]["Arn"]},
        logs={"group": "/platform/dask"},
        workers={"replicas": 2, "cpu": 1024, "memory": 2048},
    )
    status = converge(aws, tgt).status
    assert status.aws.cluster_arn == cluster_arn
    definition = aws.ecs.describe_task_definition(
        taskDefinition=status.aws.worker_task_definition_arn
    )["taskDefinition"]
    assert definition["executionRoleArn"] == execution["Role"]["Arn"]
    assert definition["taskRoleArn"] == task["Role"]["Arn"]

    assert delete(aws, tgt).done
    assert tagged_resources(aws, tgt.owner.uid) == []
    cluster = aws.ecs.describe_clusters(clusters=[cluster_arn])["clusters"][0]
    assert cluster["status"] == "ACTIVE"
    assert aws.iam.get_role(RoleName="team-exec")["Role"]["Arn"] == execution["Role"]["Arn"]
    assert aws.iam.list_role_policies(RoleName="team-task")["PolicyNames"] == ["s3"]
    assert aws.iam.list_attached_role_policies(RoleName="team-exec")["AttachedPolicies"] == []
    assert any(
        g["logGroupName"] == "/platform/dask" for g in aws.logs.describe_log_groups()["logGroups"]
    )


def test_missing_cluster_arn_is_a_permanent_error_that_creates_nothing(
    local_aws_simulated: Any,
) -> None:
    aws, _log = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("ghost", clusterArn="arn:aws:ecs:us-east-1:123456789012:cluster/does-not-exist")
    result = reconcile(aws, tgt)
    assert result.error is not None and result.error.reason == "ClusterNotFound"
    assert "does-not-exist" in result.error.message
    assert result.requeue_after is None  # Stalled: only a spec change helps
    stalled = [c for c in result.status.conditions if c.type.value == "Stalled"]
    assert stalled and stalled[0].status == "True"
    assert tagged_resources(aws, tgt.owner.uid) == []


def test_retain_policy_keeps_everything_and_marks_it(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("keeper", deletionPolicy="Retain")
    status = converge(aws, tgt).status
    assert delete(aws, tgt).done
    left = tagged_resources(aws, tgt.owner.uid)
    assert status.aws.cluster_arn in left and status.aws.security_group_id in left
    role = status.aws.task_role_arn.rsplit("/", 1)[1]
    role_tags = {t["Key"]: t["Value"] for t in aws.iam.list_role_tags(RoleName=role)["Tags"]}
    assert role_tags[RETAINED] == "true"
