"""maxWorkers: a default ceiling on workers per object, which the installation can raise."""

from __future__ import annotations

from typing import Any

import pytest

from dask_aws.controller import autoscaler, guardrails
from dask_aws.controller.config import DEFAULT_MAX_WORKERS, OperatorConfig
from dask_aws.controller.state import ObjectState
from dask_aws.engine import scheduler_api
from dask_aws.engine.scheduler_api import Endpoint
from dask_aws.errors import PermanentError
from dask_aws.spec import DaskAwsClusterSpec
from tests.chart.helpers import one, render


def _spec(replicas: int, autoscaling: dict[str, int] | None = None) -> DaskAwsClusterSpec:
    raw: dict[str, Any] = {"workers": {"replicas": replicas}}
    if autoscaling:
        raw["autoscaling"] = autoscaling
    return DaskAwsClusterSpec.model_validate(raw)


def test_the_default_is_1000_and_the_environment_raises_it() -> None:
    assert DEFAULT_MAX_WORKERS == 1000
    assert OperatorConfig().max_workers == OperatorConfig.from_env({}).max_workers == 1000
    assert OperatorConfig.from_env({"DASK_AWS_MAX_WORKERS": ""}).max_workers == 1000
    assert OperatorConfig.from_env({"DASK_AWS_MAX_WORKERS": "5000"}).max_workers == 5000


def test_replicas_or_minimum_beyond_the_ceiling_stall() -> None:
    default = OperatorConfig()
    guardrails.check(_spec(1000), default)
    guardrails.check(_spec(0, {"minimum": 0, "maximum": 10000}), default)  # clamped instead
    for spec in (_spec(10000), _spec(0, {"minimum": 1001, "maximum": 2000})):
        with pytest.raises(PermanentError) as caught:
            guardrails.check(spec, default)
        assert caught.value.reason == "TooManyWorkers"
        assert "maxWorkers (1000, DASK_AWS_MAX_WORKERS)" in caught.value.message
    guardrails.check(_spec(10000), OperatorConfig(max_workers=10000))
    # Another guardrail too: the general reason, both problems in the message.
    config = OperatorConfig(allowed_image_prefixes=["registry.example/"])
    with pytest.raises(PermanentError) as caught:
        guardrails.check(_spec(10000), config)
    assert caught.value.reason == "Forbidden" and "maxWorkers" in caught.value.message


def test_the_autoscaler_target_is_clamped_to_the_ceiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_api, "adaptive_target", lambda _: 5000)
    spec = _spec(10, {"minimum": 0, "maximum": 5000, "cooldownSeconds": 0})
    state = ObjectState()
    assert (
        autoscaler.desired_workers(spec, state, Endpoint("tls://s:8786"), 100.0, ceiling=1000)
        == 1000
    )
    assert state.autoscale_target == 1000
    assert autoscaler.desired_workers(spec, ObjectState(), Endpoint("tls://s:8786"), 100.0) == 5000
    # A starting size beyond the ceiling starts at the ceiling.
    big = _spec(3000, {"minimum": 0, "maximum": 5000})
    assert autoscaler.desired_workers(big, ObjectState(), None, 0.0, ceiling=1000) == 1000


def test_the_chart_sets_1000_by_default_and_takes_a_raise(k8s: Any) -> None:
    def env(*values: str) -> dict[str, str]:
        (container,) = one(render(k8s, *values), "Deployment")["spec"]["template"]["spec"][
            "containers"
        ]
        return {e["name"]: e.get("value", "") for e in container["env"]}

    assert OperatorConfig.from_env(env()).max_workers == 1000
    assert OperatorConfig.from_env(env("--set", "operator.maxWorkers=4000")).max_workers == 4000


def test_every_image_and_group_is_held_to_the_operator_guardrails() -> None:
    allowed = OperatorConfig(allowed_image_prefixes=["registry.example/"])
    ok = DaskAwsClusterSpec.model_validate(
        {"image": "registry.example/dask:1", "workerGroups": [{"name": "spot"}]}
    )
    guardrails.check(ok, allowed)
    for sneaky, field in (
        ({"workers": {"image": "evil.example/x:1"}}, "workers.image evil.example/x:1"),
        (
            {"workerGroups": [{"name": "gpu", "image": "evil.example/y:1"}]},
            "workerGroups[gpu].image evil.example/y:1",
        ),
    ):
        spec = DaskAwsClusterSpec.model_validate({"image": "registry.example/dask:1", **sneaky})
        with pytest.raises(PermanentError) as caught:
            guardrails.check(spec, allowed)
        assert field in caught.value.message and "allowedImagePrefixes" in caught.value.message
    big = DaskAwsClusterSpec.model_validate({"workerGroups": [{"name": "big", "replicas": 5000}]})
    with pytest.raises(PermanentError) as caught:
        guardrails.check(big, OperatorConfig())
    assert "workerGroups[big].replicas 5000 exceeds" in caught.value.message
