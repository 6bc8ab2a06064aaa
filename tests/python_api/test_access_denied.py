"""A missing IAM permission stops the start at once, names the action, and leaves nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import dask.config
import pytest

from dask_aws import FargateCluster
from dask_aws.aws.clients import Aws
from dask_aws.cluster.core import ClusterStartError
from dask_aws.cluster.gc import inventory
from dask_aws.local import LocalAws
from tests.python_api.helpers import SMALL

ALL_BUT_CREATE_ROLE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:CreateRole", "Resource": "*"},
    ],
}


@pytest.fixture
def enforcing_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAws, dict[str, str]]]:
    """Its own simulated local AWS, enforcing IAM after the three set-up calls below."""
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")
    with LocalAws(simulated=True) as local:
        monkeypatch.delenv("INITIAL_NO_AUTH_ACTION_COUNT")
        iam = boto3.client("iam", **local.client_kwargs())
        iam.create_user(UserName="analyst")
        iam.put_user_policy(
            UserName="analyst", PolicyName="p", PolicyDocument=json.dumps(ALL_BUT_CREATE_ROLE)
        )
        key = iam.create_access_key(UserName="analyst")["AccessKey"]
        env = {
            **local.env(),
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with dask.config.set({"dask_aws.checkip-url": local.checkip_url}):
            yield local, env


def test_missing_permission_is_named_and_nothing_is_left(
    enforcing_aws: tuple[LocalAws, dict[str, str]],
) -> None:
    local, env = enforcing_aws
    started = time.monotonic()
    with pytest.raises(ClusterStartError) as info:
        FargateCluster(**SMALL)
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "AWS denied CreateRole" in message and "iam:CreateRole" in message
    assert "your AWS identity" in message and "operator" not in message
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    aws = Aws(session, "us-east-1", endpoint_url=local.endpoint_url)
    assert inventory(aws) == {}  # this local AWS is ours alone: nothing carries our tags
    clusters = aws.ecs.list_clusters()["clusterArns"]
    statuses = [c["status"] for c in aws.ecs.describe_clusters(clusters=clusters)["clusters"]]
    assert statuses == ["INACTIVE"]  # the ECS cluster created before CreateRole was denied
