"""Bad specs give errors a person understands; names always fit AWS limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dask_aws.names import Owner, ResourceNames
from dask_aws.spec import DaskAwsClusterSpec

BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    (
        "fargate-pair",
        {"workers": {"cpu": 256, "memory": 30720}},
        "Fargate does not offer cpu=256 with memory=30720 MiB; with cpu=256 memory must be "
        "one of 512, 1024, 2048 MiB",
    ),
    (
        "fargate-cpu",
        {"scheduler": {"cpu": 3000, "memory": 4096}},
        "Fargate does not offer cpu=3000",
    ),
    ("gpu-on-fargate", {"workers": {"gpu": 1}}, "workers.gpu needs launchType EC2"),
    ("negative-replicas", {"workers": {"replicas": -1}}, "greater than or equal to 0"),
    (
        "min-over-max",
        {"autoscaling": {"minimum": 5, "maximum": 2}},
        "autoscaling.minimum (5) must not exceed maximum (2)",
    ),
    ("unknown-launch-type", {"launchType": "LAMBDA"}, "Input should be 'FARGATE' or 'EC2'"),
    ("ec2-without-cluster", {"launchType": "EC2"}, "launchType EC2 needs clusterArn"),
    (
        "spot-on-ec2",
        {
            "launchType": "EC2",
            "workers": {"spot": True},
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/gpu",
        },
        "workers.spot uses FARGATE_SPOT",
    ),
    ("bad-cidr", {"network": {"allowedClientCidrs": ["10.0.0.0/33"]}}, "is not a CIDR block"),
    ("secret-not-arn", {"secrets": {"TOKEN": "my-token"}}, "String should match pattern"),
    ("reserved-tag", {"tags": {"dask-aws.io/owner-uid": "x"}}, "reserved prefix"),
    ("retention", {"logs": {"retentionDays": 2}}, "logs.retentionDays must be one of"),
    ("unknown-field", {"wrokers": {"replicas": 3}}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("case", "spec", "message"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_is_rejected_with_a_clear_message(
    case: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        DaskAwsClusterSpec.model_validate(spec)
    assert message in str(info.value)


def test_every_fargate_pair_in_the_table_is_accepted() -> None:
    for cpu, memory in [(256, 512), (256, 2048), (512, 4096), (4096, 30720), (16384, 122880)]:
        DaskAwsClusterSpec.model_validate({"workers": {"cpu": cpu, "memory": memory}})


def test_a_200_character_name_gets_names_that_fit_every_aws_limit() -> None:
    owner = Owner(uid="0" * 36, name="a" * 200, namespace="n" * 63)
    names = ResourceNames.for_owner(owner)
    assert len(names.execution_role) <= 64 and len(names.task_role) <= 64
    assert len(names.ecs_cluster) <= 255 and len(names.worker_family) <= 255
    assert len(names.security_group) <= 255 and len(names.log_group) <= 512
    other = ResourceNames.for_owner(Owner(uid="1" * 36, name="a" * 200, namespace="n" * 63))
    assert other.execution_role != names.execution_role  # the uid hash keeps them apart


@pytest.mark.parametrize(
    ("name", "message"),
    [("x" * 254, "at most 253 fit"), ("Bad_Name", "must be lower case letters"), ("", "empty")],
)
def test_unusable_owner_names_are_rejected(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Owner(uid="u", name=name)


def test_startedby_limit_is_enforced_for_the_owner_uid() -> None:
    with pytest.raises(ValueError, match="36 characters"):
        Owner(uid="u" * 37, name="ok")
