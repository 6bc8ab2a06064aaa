"""kubectl-level helpers for DaskAwsJob tests."""

from __future__ import annotations

from typing import Any

import yaml

from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, condition, get

# A cluster as small as the local AWS allows: the scheduler and `workers` workers.
CLUSTER = {"scheduler": dict(SMALL), "workers": {"replicas": 1, **SMALL}}
RUNNER = {"cpu": 512, "memory": 1024}


def job_manifest(name: str, command: list[str], **spec: Any) -> str:
    runner = {"command": command, **RUNNER, **spec.pop("runner", {})}
    spec.setdefault("cluster", {"spec": CLUSTER})
    return yaml.safe_dump(
        {
            "apiVersion": "daskaws.io/v1alpha1",
            "kind": "DaskAwsJob",
            "metadata": {"name": name},
            "spec": {"runner": runner, **spec},
        }
    )


def python(code: str) -> list[str]:
    return ["python", "-c", code]


def get_job(k8s: Any, namespace: str, name: str) -> dict[str, Any] | None:
    return get(k8s, namespace, name, kind="daj")


def finished(k8s: Any, namespace: str, name: str, timeout: float = 180) -> dict[str, Any]:
    """The job once it is Complete or Failed."""

    def check() -> dict[str, Any] | None:
        job = get_job(k8s, namespace, name)
        for type_ in ("Complete", "Failed"):
            c = condition(job, type_)
            if c and c["status"] == "True":
                return job
        return None

    def seen() -> str:
        return f"{name} finished; status now: {(get_job(k8s, namespace, name) or {}).get('status')}"

    return wait_for(check, timeout, seen)


def phase_is(
    k8s: Any, namespace: str, name: str, phase: str, timeout: float = 180
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = get_job(k8s, namespace, name)
        return job if ((job or {}).get("status") or {}).get("phase") == phase else None

    def seen() -> str:
        return f"{name} {phase}; status now: {(get_job(k8s, namespace, name) or {}).get('status')}"

    return wait_for(check, timeout, seen)


def runner_tasks(aws: Any, cluster_arn: str, job_uid: str) -> list[dict[str, Any]]:
    """Every runner task ECS knows of for this job, stopped ones too."""
    arns: list[str] = []
    for state in ("RUNNING", "STOPPED"):
        arns += aws.ecs.list_tasks(cluster=cluster_arn, startedBy=job_uid, desiredStatus=state)[
            "taskArns"
        ]
    if not arns:
        return []
    return list(aws.ecs.describe_tasks(cluster=cluster_arn, tasks=arns)["tasks"])
