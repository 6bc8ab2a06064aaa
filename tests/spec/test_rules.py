"""Each row of the rule table rejects a breaking object with its own message, in pydantic
and (for rows with CEL) in the real API server: one table, both sides."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dask_aws.camel import CamelModel
from dask_aws.rules import Rule
from dask_aws.spec import (
    RULES,
    AutoscalingSpec,
    Capacity,
    DaskAwsClusterSpec,
    LaunchType,
    RolloutSpec,
    SchedulerSpec,
    WorkerGroupSpec,
    WorkerSpec,
)

GPU_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:token"
# Built without validation, so each breaks a rule; a sample may break more than one.
BROKEN: list[CamelModel] = [
    AutoscalingSpec.model_construct(minimum=5, maximum=2),
    DaskAwsClusterSpec.model_construct(scheduler=SchedulerSpec(cpu=3000, memory=4096)),
    DaskAwsClusterSpec.model_construct(workers=WorkerSpec(cpu=256, memory=30720)),
    DaskAwsClusterSpec.model_construct(workers=WorkerSpec(gpu=1)),
    DaskAwsClusterSpec.model_construct(launch_type=LaunchType.EC2),
    DaskAwsClusterSpec.model_construct(
        launch_type=LaunchType.EC2, cluster_arn=GPU_CLUSTER, workers=WorkerSpec(spot=True)
    ),
    DaskAwsClusterSpec.model_construct(
        secrets={"TOKEN": SECRET}, workers=WorkerSpec(env={"TOKEN": "x"})
    ),
    DaskAwsClusterSpec.model_construct(tags={f"team-{i}": "x" for i in range(41)}),
    DaskAwsClusterSpec.model_construct(tags={"aws:owner": "x", "dask-aws.io/uid": "z"}),
    RolloutSpec.model_construct(max_surge=0, max_unavailable=0),
    DaskAwsClusterSpec.model_construct(
        worker_groups=[WorkerGroupSpec(name="big", cpu=256, memory=30720)]
    ),
    DaskAwsClusterSpec.model_construct(worker_groups=[WorkerGroupSpec(name="gpu", gpu=1)]),
    DaskAwsClusterSpec.model_construct(
        launch_type=LaunchType.EC2,
        cluster_arn=GPU_CLUSTER,
        worker_groups=[WorkerGroupSpec(name="cheap", capacity=Capacity.SPOT)],
    ),
    DaskAwsClusterSpec.model_construct(
        launch_type=LaunchType.EC2,
        cluster_arn=GPU_CLUSTER,
        workers=WorkerSpec(ephemeral_storage_gib=50),
    ),
    DaskAwsClusterSpec.model_construct(
        worker_groups=[WorkerGroupSpec(name="twin"), WorkerGroupSpec(name="twin")]
    ),
]


def _breaking(rule: Rule[Any]) -> list[CamelModel]:
    found = [obj for obj in BROKEN if type(obj) is rule.model and not rule.check(obj)]
    assert found, f"no sample in BROKEN breaks {rule.message!r}: add one"
    return found


def _spec_of(obj: CamelModel) -> dict[str, Any]:
    if isinstance(obj, AutoscalingSpec):
        return {"autoscaling": obj.wire()}
    if isinstance(obj, RolloutSpec):
        return {"workers": {"rollout": obj.wire()}}
    return obj.wire()


def _id(rule: Rule[Any]) -> str:
    return rule.message[:40]


@pytest.mark.parametrize("rule", RULES, ids=_id)
def test_pydantic_rejects_with_the_rows_message(rule: Rule[Any]) -> None:
    for obj in _breaking(rule):
        with pytest.raises(ValidationError) as info:
            type(obj).model_validate(obj.wire())
        error = rule.error(obj)
        assert error and error in str(info.value)
        if rule.explain is None:
            assert error == rule.message


def test_the_samples_break_no_field_rule() -> None:
    """A sample rejected for a field would prove nothing about the cross-field rows."""
    for obj in BROKEN:
        with pytest.raises(ValidationError) as info:
            DaskAwsClusterSpec.model_validate(_spec_of(obj))
        # A cross-field error sits on the model of its row, never on one of its fields.
        assert all(
            e["type"] == "value_error"
            and e["loc"] in ((), ("autoscaling",), ("workers", "rollout"))
            for e in info.value.errors()
        ), info.value.errors()


@pytest.mark.parametrize("rule", [r for r in RULES if r.cel], ids=_id)
def test_api_server_rejects_with_the_rows_message(
    rule: Rule[Any], k8s: Any, k8s_namespace: str
) -> None:
    for obj in _breaking(rule):
        manifest = {
            "apiVersion": "daskaws.io/v1alpha1",
            "kind": "DaskAwsCluster",
            "metadata": {"name": "broken"},
            "spec": _spec_of(obj),
        }
        proc = k8s.kubectl(
            "create",
            "--dry-run=server",
            "-n",
            k8s_namespace,
            "-f",
            "-",
            input=yaml.safe_dump(manifest),
            check=False,
        )
        assert proc.returncode != 0 and rule.message in proc.stderr, proc.stderr
