"""kubectl-level helpers for operator tests: apply, read, wait, events."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.fixtures.polling import wait_for

SMALL = {"cpu": 512, "memory": 1024}


def manifest(name: str, **spec: Any) -> str:
    spec.setdefault("scheduler", dict(SMALL))
    spec.setdefault("workers", {"replicas": 2, **SMALL})
    return yaml.safe_dump(
        {
            "apiVersion": "daskaws.io/v1alpha1",
            "kind": "DaskAwsCluster",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def apply(k8s: Any, namespace: str, text: str) -> None:
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=text)


def get(k8s: Any, namespace: str, name: str, kind: str = "dac") -> dict[str, Any] | None:
    """The object as `kubectl get -o json` prints it; None when there is none."""
    proc = k8s.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if proc.returncode != 0:
        if "NotFound" in proc.stderr:
            return None
        raise AssertionError(proc.stderr)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return None


def ready(k8s: Any, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(k8s, namespace, name)
        c = condition(obj, "Ready")
        if (
            obj
            and c
            and c["status"] == "True"
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        ):
            return obj
        return None

    def seen() -> str:
        status = (get(k8s, namespace, name) or {}).get("status") or {}
        return f"{name} Ready; status now: {status}"

    return wait_for(check, timeout, seen)


def events(k8s: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    proc = k8s.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "-o",
        "json",
        f"--field-selector=involvedObject.name={name}",
    )
    return list(json.loads(proc.stdout)["items"])


def event_reasons(k8s: Any, namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in events(k8s, namespace, name)]
