"""The DaskAwsJob spec refuses what cannot run, in pydantic and in the real API server
(one table of broken specs, both sides), and only suspend and the two timers change after
creation. No operator runs here: these are the API server's own answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dask_aws.crd import crd_documents
from dask_aws.jobs import spec as job_spec
from dask_aws.jobs.crd import job_crd
from dask_aws.jobs.spec import DaskAwsJobSpec
from tests.fixtures.crd_schema import explain

ROOT = Path(__file__).resolve().parents[2]
EC2_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:token"
RUN: dict[str, Any] = {"command": ["python", "-c", "print(1)"]}
BOTH = job_spec.RULES[0].message
CLASH = job_spec.RULES[1].message
FARGATE = job_spec.RULES[2].message
NOT_FARGATE = {"cpu": 256, "memory": 4096}


@dataclass(frozen=True)
class Broken:
    id: str
    spec: dict[str, Any]
    pydantic: str  # in pydantic's error
    api: str  # in the API server's refusal


BROKEN = [
    Broken(
        "cluster-name-and-spec",
        {"cluster": {"name": "shared", "spec": {}}, "runner": RUN},
        BOTH,
        BOTH,
    ),
    Broken(
        "env-secrets-clash",
        {"runner": {**RUN, "env": {"TOKEN": "x"}, "secrets": {"TOKEN": SECRET}}},
        "runner: secrets and env both define TOKEN",
        CLASH,
    ),
    Broken(
        "fargate-size-own-cluster",
        {"runner": {**RUN, **NOT_FARGATE}},
        "runner: Fargate does not offer cpu=256 with memory=4096 MiB",
        FARGATE,
    ),
    Broken(
        "fargate-size-own-cluster-spec",
        {"cluster": {"spec": {"launchType": "FARGATE"}}, "runner": {**RUN, **NOT_FARGATE}},
        "runner: Fargate does not offer cpu=256",
        FARGATE,
    ),
    Broken("no-command", {"runner": {"cpu": 1024}}, "Field required", "Required value"),
    Broken("empty-command", {"runner": {"command": []}}, "at least 1 item", "at least 1 item"),
    Broken("no-runner", {}, "Field required", "Required value"),
]

ACCEPTED = {
    "default-cluster": {"runner": RUN},
    "referenced-cluster-any-size": {
        "cluster": {"name": "shared"},
        "runner": {**RUN, **NOT_FARGATE},
    },
    "ec2-cluster-any-size": {
        "cluster": {"spec": {"launchType": "EC2", "clusterArn": EC2_CLUSTER}},
        "runner": {**RUN, **NOT_FARGATE},
    },
    "fargate-size": {"runner": {**RUN, "cpu": 512, "memory": 4096}},
}


def _cases() -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BROKEN]


@pytest.mark.parametrize("broken", _cases())
def test_pydantic_refuses_a_broken_job(broken: Broken) -> None:
    with pytest.raises(ValidationError) as info:
        DaskAwsJobSpec.model_validate(broken.spec)
    assert broken.pydantic in str(info.value)


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=list(ACCEPTED))
def test_pydantic_accepts_a_valid_job(raw: dict[str, Any]) -> None:
    DaskAwsJobSpec.model_validate(raw)


def test_a_job_without_cluster_runs_on_a_fargate_cluster_of_its_own() -> None:
    job = DaskAwsJobSpec.model_validate({"runner": RUN})
    assert job.cluster.name is None and job.on_fargate and job.backoff_limit == 6
    assert not DaskAwsJobSpec.model_validate(ACCEPTED["referenced-cluster-any-size"]).on_fargate


def test_committed_job_crd_is_the_generated_one() -> None:
    text = dict(crd_documents())["daskawsjob.yaml"]
    assert yaml.safe_load(text) == job_crd()
    for folder in ("crds", "charts/dask-aws-operator/crds"):
        assert (ROOT / folder / "daskawsjob.yaml").read_text() == text, (
            f"{folder}/daskawsjob.yaml is stale: run `dask-aws crd --dir {folder}`"
        )


# --- the real API server ---------------------------------------------------------------


def _manifest(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "daskaws.io/v1alpha1",
            "kind": "DaskAwsJob",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def _apply(k8s: Any, namespace: str, name: str, spec: dict[str, Any]) -> Any:
    return k8s.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_manifest(name, spec), check=False
    )


def _patch(k8s: Any, namespace: str, name: str, patch: dict[str, Any], *extra: str) -> Any:
    return k8s.kubectl(
        "patch", "daj", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch), *extra,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("broken", _cases())
def test_kubectl_apply_refuses_a_broken_job_with_the_rules_message(
    broken: Broken, k8s: Any, k8s_namespace: str
) -> None:
    proc = _apply(k8s, k8s_namespace, "broken", broken.spec)
    assert proc.returncode != 0 and broken.api in proc.stderr, proc.stderr
    gone = k8s.kubectl("get", "daj", "-n", k8s_namespace, "-o", "name")
    assert gone.stdout.strip() == ""


def test_kubectl_apply_accepts_valid_jobs(k8s: Any, k8s_namespace: str) -> None:
    for name, spec in ACCEPTED.items():
        proc = _apply(k8s, k8s_namespace, name, spec)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
    listed = k8s.kubectl("get", "daj", "-n", k8s_namespace, "-o", "name").stdout.split()
    assert sorted(listed) == sorted(f"daskawsjob.daskaws.io/{n}" for n in ACCEPTED)
    job = json.loads(
        k8s.kubectl("get", "daj", "default-cluster", "-n", k8s_namespace, "-o", "json").stdout
    )
    # The API server fills the defaults the CEL rules read.
    assert job["spec"]["runner"]["cpu"] == 1024 and job["spec"]["backoffLimit"] == 6
    assert job["spec"]["suspend"] is False and job["spec"]["cluster"] == {}


def test_what_a_job_runs_is_immutable_and_its_timers_are_not(k8s: Any, k8s_namespace: str) -> None:
    spec = {"cluster": {"spec": {"workers": {"replicas": 1}}}, "runner": RUN}
    assert _apply(k8s, k8s_namespace, "etl", spec).returncode == 0
    for change in (
        {"runner": {"args": ["--fast"]}},
        {"runner": {"command": ["python", "other.py"]}},
        {"runner": {"cpu": 2048, "memory": 4096}},
        {"cluster": {"spec": {"workers": {"replicas": 3}}}},
        {"cluster": {"name": "shared", "spec": None}},
    ):
        proc = _patch(k8s, k8s_namespace, "etl", {"spec": change})
        assert proc.returncode != 0 and "is immutable" in proc.stderr, (change, proc.stderr)
    allowed = {"suspend": True, "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60}
    proc = _patch(k8s, k8s_namespace, "etl", {"spec": allowed})
    assert proc.returncode == 0, proc.stderr
    job = json.loads(k8s.kubectl("get", "daj", "etl", "-n", k8s_namespace, "-o", "json").stdout)
    assert {k: job["spec"][k] for k in allowed} == allowed
    assert (
        job["spec"]["runner"]["command"] == RUN["command"] and "args" not in job["spec"]["runner"]
    )
    back = {"suspend": False, "activeDeadlineSeconds": None, "ttlSecondsAfterFinished": 0}
    assert _patch(k8s, k8s_namespace, "etl", {"spec": back}).returncode == 0


def test_kubectl_explain_describes_the_runner(k8s: Any) -> None:
    text = explain(k8s, "daj.spec.runner")
    assert "<no description>" not in text and "<empty>" not in text, text
    assert "The program. Immutable." in text  # the field's own description
    for name in ("command", "args", "env", "secrets", "cpu", "memory", "image", "taskRoleArn"):
        assert f"\n  {name}\t" in text, f"{name} missing from:\n{text}"
    assert "Exit code 0 completes the job" in text


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days, minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_kubectl_get_shows_the_jobs_columns(k8s: Any, k8s_namespace: str) -> None:
    assert _apply(k8s, k8s_namespace, "etl", {"runner": RUN}).returncode == 0
    status = {
        "status": {
            "phase": "Succeeded",
            "cluster": {"name": "etl-1a2b3c4d", "owned": True},
            "attempts": 2,
            "startTime": _days_ago(3),
            "completionTime": _days_ago(2),
        }
    }
    proc = _patch(k8s, k8s_namespace, "etl", status, "--subresource=status")
    assert proc.returncode == 0, proc.stderr
    table = k8s.kubectl("get", "daj", "-n", k8s_namespace).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header == ["NAME", "PHASE", "CLUSTER", "ATTEMPTS", "STARTED", "FINISHED", "AGE"]
    assert row[:6] == ["etl", "Succeeded", "etl-1a2b3c4d", "2", "3d", "2d"]  # dates as ages
