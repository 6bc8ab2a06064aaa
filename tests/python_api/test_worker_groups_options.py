"""worker_groups= and cpu_architecture= of FargateCluster/ECSCluster: what they put in the
spec, and the errors a person sees before anything is called on AWS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dask_aws.aws import task_definitions
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import Refs
from dask_aws.cluster import options
from dask_aws.cluster.core import ECSCluster
from dask_aws.names import Owner
from dask_aws.spec import Architecture, Capacity, WorkerGroupSpec

REFS = Refs("arn:exec", "arn:task", "/logs", "us-east-1")
SMALL = {"cpu": 512, "memory": 1024}


def _build(**kwargs: Any) -> options.Options:
    return options.build(options.FARGATE_KIND, kwargs)


def _target(built: options.Options) -> Target:
    return Target(Owner(uid=str(uuid.uuid4()), name="demo", namespace="default"), built.spec)


def test_worker_groups_are_accepted_as_dicts_in_either_spelling_and_as_specs() -> None:
    built = _build(
        n_workers=1,
        worker_groups=[
            {"name": "spot", "capacity": "SpotWithFallback", "replicas": 3, **SMALL},
            {"name": "disk", "ephemeral_storage_gib": 50, "extra_args": ["--lifetime", "1h"]},
            {"name": "arm", "ephemeralStorageGiB": 40, "extraArgs": ["--no-nanny"]},
            WorkerGroupSpec(name="big", cpu=8192, memory=32768, resources={"BIG": 1}),
        ],
    )
    spec = built.spec
    assert spec.group_names == ["", "spot", "disk", "arm", "big"]
    spot = spec.worker_group("spot")
    assert isinstance(spot, WorkerGroupSpec)
    assert spot.capacity is Capacity.SPOT_WITH_FALLBACK and spot.replicas == 3
    assert (spot.cpu, spot.memory) == (512, 1024)
    disk, arm = spec.worker_group("disk"), spec.worker_group("arm")
    assert disk.ephemeral_storage_gib == 50 and disk.extra_args == ["--lifetime", "1h"]
    assert arm.ephemeral_storage_gib == 40 and arm.extra_args == ["--no-nanny"]
    big = spec.worker_group("big")
    assert (big.cpu, big.memory, big.resources) == (8192, 32768, {"BIG": 1.0})
    assert spec.workers.replicas == 1  # n_workers stays the default group's


def test_no_worker_groups_means_only_the_default_workers() -> None:
    assert _build().spec.worker_groups == []
    assert _build().spec.group_names == [""]


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (
            [{"name": "small", "cpu": 256, "memory": 30720}],
            "worker_groups[small]: Fargate does not offer cpu=256 with memory=30720 MiB",
        ),
        ([{"name": "a", **SMALL}, {"name": "a", **SMALL}], "repeated: a"),
        ([{"name": "gpu", "gpu": 1}], "Fargate has no GPUs"),
        ([{"name": "Not_A_Label"}], "String should match pattern"),
        ({"name": "spot"}, "a list of groups"),
    ],
    ids=["bad-size", "duplicate-names", "gpu-on-fargate", "bad-name", "not-a-list"],
)
def test_bad_worker_groups_fail_before_any_aws_call_and_name_the_argument(
    groups: Any, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_aws(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("AWS was called")

    monkeypatch.setattr("boto3.Session.client", no_aws)
    with pytest.raises(ValueError) as info:
        _build(worker_groups=groups)
    message = str(info.value)
    assert "worker_groups" in message and "workerGroups" not in message, message
    assert expected in message, message


def test_a_bad_group_through_the_cluster_class_fails_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_aws(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("AWS was called")

    monkeypatch.setattr("dask_aws.cluster.core.connect", no_aws)
    monkeypatch.setattr("boto3.Session.client", no_aws)
    with pytest.raises(ValueError, match="worker_groups"):
        ECSCluster(
            fargate_scheduler=True, fargate_workers=True, worker_groups=[{"name": "x", "gpu": 1}]
        )


def test_cpu_architecture_arm64_runs_the_scheduler_and_workers_on_graviton() -> None:
    built = _build(cpu_architecture="arm64")  # dask-cloudprovider's users write it so too
    assert built.spec.workers.architecture is Architecture.ARM64
    assert built.spec.scheduler.architecture is Architecture.ARM64
    # As dask-cloudprovider does: an ARM-only image must run the scheduler as well.
    for component in ("worker", "scheduler"):
        registration = task_definitions.desired(_target(built), component, REFS)
        assert registration["runtimePlatform"] == {
            "cpuArchitecture": "ARM64",
            "operatingSystemFamily": "LINUX",
        }


def test_the_default_architecture_leaves_the_task_definition_as_it_was() -> None:
    built = _build()
    assert built.spec.workers.architecture is Architecture.X86_64
    assert "runtimePlatform" not in task_definitions.desired(_target(built), "worker", REFS)


def test_a_graviton_group_gets_its_own_runtime_platform_and_storage() -> None:
    built = _build(
        worker_groups=[{"name": "arm", "architecture": "ARM64", "ephemeralStorageGiB": 60}]
    )
    group = task_definitions.desired(_target(built), "worker", REFS, "arm")
    assert group["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert group["ephemeralStorage"] == {"sizeInGiB": 60}
    assert group["family"].endswith("-worker-arm")
    default = task_definitions.desired(_target(built), "worker", REFS)
    assert "runtimePlatform" not in default and "ephemeralStorage" not in default


def test_a_bad_cpu_architecture_names_the_argument() -> None:
    with pytest.raises(ValueError, match="cpu_architecture"):
        _build(cpu_architecture="MIPS")


def _offline(built: options.Options) -> ECSCluster:
    """An ECSCluster object with just what scale() reads: no AWS, no event loop."""
    cluster = object.__new__(ECSCluster)
    cluster._target = _target(built)  # type: ignore[attr-defined]
    cluster._desired = built.n_workers  # type: ignore[attr-defined]
    cluster._group_desired = {}  # type: ignore[attr-defined]
    cluster._wake = None  # type: ignore[attr-defined]
    return cluster


def test_scale_of_an_unknown_group_names_the_groups() -> None:
    cluster = _offline(_build(worker_groups=[{"name": "spot"}, {"name": "gpu-less"}]))
    with pytest.raises(ValueError) as info:
        cluster.scale(3, group="nope")
    assert "group='nope'" in str(info.value) and "spot, gpu-less" in str(info.value)
    lonely = _offline(_build())
    with pytest.raises(ValueError, match=r"the groups: none"):
        lonely.scale(1, group="spot")


def test_scale_of_a_group_leaves_the_default_workers_alone() -> None:
    cluster = _offline(_build(n_workers=2, worker_groups=[{"name": "spot"}]))
    cluster.scale(5, group="spot")
    assert cluster._group_desired == {"spot": 5}  # type: ignore[attr-defined]
    assert cluster._desired == 2  # type: ignore[attr-defined]
    cluster.scale(4)
    assert cluster._desired == 4 and cluster._group_desired == {"spot": 5}  # type: ignore[attr-defined]


def test_a_spot_group_on_the_ec2_launch_type_names_the_argument() -> None:
    with pytest.raises(ValueError, match="worker_groups: capacity Spot and SpotWithFallback"):
        options.build(
            options.ECS_KIND,
            {
                "cluster_arn": "arn:aws:ecs:us-east-1:123456789012:cluster/gpu",
                "worker_groups": [{"name": "cheap", "capacity": "Spot"}],
            },
        )
