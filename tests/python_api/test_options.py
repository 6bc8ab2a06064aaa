"""Keyword arguments -> spec: dask-cloudprovider's names, dask.config defaults, clear errors."""

from __future__ import annotations

import time

import dask.config
import pytest

from dask_aws.aws import tags
from dask_aws.cluster import options
from dask_aws.spec import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE, LaunchType

GPU_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"


def test_defaults_match_dask_cloudprovider() -> None:
    built = options.build(options.FARGATE_KIND, {})
    spec = built.spec
    assert (spec.scheduler.cpu, spec.scheduler.memory) == (1024, 4096)
    assert (spec.workers.cpu, spec.workers.memory) == (4096, 16384)
    assert built.n_workers == 0
    assert spec.image == DEFAULT_IMAGE
    assert spec.launch_type is LaunchType.FARGATE
    assert spec.scheduler.idle_timeout_seconds == 300  # scheduler_timeout "5 minutes"
    assert spec.logs.retention_days == 30
    assert spec.network.assign_public_ip is None  # automatic: by the subnets' routes
    assert built.reach == "auto" and not built.cidrs_given  # decided at start


@pytest.mark.parametrize(
    ("kind", "kwargs", "reach", "public_ip"),
    [
        (options.FARGATE_KIND, {}, "auto", None),
        (options.FARGATE_KIND, {"fargate_use_private_ip": True}, "private", None),
        (options.FARGATE_KIND, {"fargate_use_private_ip": False}, "public", True),
        (options.ECS_KIND, {"cluster_arn": GPU_CLUSTER}, "private", None),
    ],
    ids=["unset-automatic", "private", "public-without-cidrs", "ec2-private"],
)
def test_fargate_use_private_ip_picks_how_the_client_reaches_the_scheduler(
    kind: str, kwargs: dict[str, object], reach: str, public_ip: bool | None
) -> None:
    built = options.build(kind, kwargs)
    assert built.reach == reach
    assert built.spec.network.assign_public_ip is public_ip
    assert built.spec.network.allowed_client_cidrs == []  # filled in at start


def test_keyword_arguments_map_onto_the_spec() -> None:
    built = options.build(
        options.FARGATE_KIND,
        {
            "image": "repo/img:1",
            "n_workers": 3,
            "scheduler_cpu": 2048,
            "scheduler_mem": 8192,
            "worker_cpu": 1024,
            "worker_mem": 4096,
            "worker_nthreads": 2,
            "execution_role_arn": "arn:aws:iam::123456789012:role/exec",
            "task_role_arn": "arn:aws:iam::123456789012:role/task",
            "task_role_policies": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
            "cloudwatch_logs_group": "my-logs",
            "cloudwatch_logs_default_retention": 14,
            "vpc": "vpc-0123abcd",
            "subnets": ["subnet-0123abcd"],
            "security_groups": ["sg-0123abcd"],
            "environment": {"EXTRA_PIP_PACKAGES": "s3fs"},
            "tags": {"team": "data"},
            "region_name": "eu-west-1",
            "fargate_spot": True,
            "platform_version": "1.4.0",
            "skip_cleanup": True,
            "scheduler_timeout": "15 minutes",
            "name": "analytics",
        },
    )
    spec = built.spec
    assert built.name == "analytics" and built.region == "eu-west-1" and built.n_workers == 3
    assert spec.workers.replicas == 3 and spec.workers.nthreads == 2 and spec.workers.spot
    assert spec.iam.execution_role_arn == "arn:aws:iam::123456789012:role/exec"
    assert spec.iam.task_role_policies == ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    assert spec.logs.group == "my-logs" and spec.logs.retention_days == 14
    assert spec.network.vpc == "vpc-0123abcd" and spec.network.security_groups == ["sg-0123abcd"]
    assert spec.scheduler.env == spec.workers.env == {"EXTRA_PIP_PACKAGES": "s3fs"}
    assert spec.tags == {"team": "data"} and spec.platform_version == "1.4.0"
    assert spec.scheduler.idle_timeout_seconds == 900


def test_dask_config_supplies_defaults() -> None:
    with dask.config.set({"dask_aws.worker-cpu": 1024, "dask_aws.worker_mem": 2048}):
        spec = options.build(options.FARGATE_KIND, {}).spec
    assert (spec.workers.cpu, spec.workers.memory) == (1024, 2048)
    assert dask.config.get("dask_aws.gc.stale-after") == "10 minutes"


def test_gpu_workers_on_an_ec2_cluster() -> None:
    spec = options.build(options.ECS_KIND, {"cluster_arn": GPU_CLUSTER, "worker_gpu": 1}).spec
    assert spec.launch_type is LaunchType.EC2
    assert spec.workers.gpu == 1 and spec.image == DEFAULT_GPU_IMAGE
    assert spec.cluster_arn == GPU_CLUSTER


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        (
            options.FARGATE_KIND,
            {"worker_cpu": 256, "worker_mem": 30720},
            "worker_cpu/worker_mem: Fargate does not offer cpu=256 with memory=30720 MiB; "
            "with cpu=256 memory must be one of 512, 1024, 2048 MiB",
        ),
        (options.FARGATE_KIND, {"scheduler_cpu": 300}, "valid cpu values are 256, 512"),
        (options.FARGATE_KIND, {"worker_gpu": 1}, "Fargate has none: use ECSCluster(cluster_arn="),
        (options.ECS_KIND, {"worker_gpu": 1}, "pass cluster_arn="),
        (options.ECS_KIND, {"cluster_arn": "gpu"}, "cluster_arn: String should match"),
        (options.FARGATE_KIND, {"fargate_use_private_ip": "no"}, "pass True (connect to"),
        (
            options.ECS_KIND,
            {"cluster_arn": GPU_CLUSTER, "fargate_use_private_ip": False},
            "EC2 launch type get no public IP",
        ),
        (options.FARGATE_KIND, {"environment": {"1BAD": "x"}}, "environment (1BAD)"),
        (options.FARGATE_KIND, {"tags": {f"{tags.PREFIX}x": "y"}}, "reserved prefix"),
        (options.FARGATE_KIND, {"name": "Not_Valid"}, "name: the cluster name"),
        (options.FARGATE_KIND, {"volumes": []}, "volumes is not supported"),
        (options.FARGATE_KIND, {"cloudwatch_logs_default_retention": 2}, "must be one of 1, 3"),
        (
            options.ECS_KIND,
            {"cluster_arn": GPU_CLUSTER, "fargate_spot": True},
            "fargate_spot=True needs Fargate",
        ),
    ],
)
def test_bad_arguments_say_what_to_fix(kind: str, kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError) as info:
        options.build(kind, kwargs)
    assert expected in str(info.value)


def test_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_worker'"):
        options.build(options.FARGATE_KIND, {"n_worker": 2})


def test_validation_is_fast() -> None:
    start = time.perf_counter()
    for _ in range(100):
        with pytest.raises(ValueError):
            options.build(options.FARGATE_KIND, {"worker_cpu": 256, "worker_mem": 30720})
    assert time.perf_counter() - start < 1.0
