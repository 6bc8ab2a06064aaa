"""The fixtures point plain boto3 at the local AWS."""

from __future__ import annotations

import os

import boto3

from dask_aws.local import LocalAws
from tests.fixtures.local_aws import boto_session


def test_aws_env_points_default_clients_at_the_endpoint(
    local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == local_aws.endpoint_url == aws_env["AWS_ENDPOINT_URL"]
    sts = boto3.client("sts")
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_boto_session_clients_and_resources(local_aws_simulated: LocalAws) -> None:
    session = boto_session(local_aws_simulated)
    assert session.client("ecs").meta.endpoint_url == local_aws_simulated.endpoint_url
    assert session.region_name == "us-east-1"
    ec2 = session.resource("ec2")
    assert list(ec2.vpcs.all())
    assert local_aws_simulated.health()["simulated"] is True
