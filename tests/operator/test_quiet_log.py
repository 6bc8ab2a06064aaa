"""Bad input is a problem of the input, not a bug: one log line per problem, naming the
object, its reason and AWS's error code; no tracebacks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, apply, condition, get, manifest

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

# Each passes the CRD schema; the operator (or AWS) rejects it. name -> (spec, reason, code)
BAD: dict[str, tuple[dict[str, Any], str, str | None]] = {
    # Its message quotes the key: longer than a status string may be (4096), still Stalled.
    "giant-key": ({"tags": {"k" * 5000: "v"}}, "InvalidSpec", None),
    "no-vpc": ({"network": {"vpc": "vpc-0123456789abcdef0"}}, "VpcNotFound", None),
    "no-role": (
        {"iam": {"taskRoleArn": "arn:aws:iam::123456789012:role/not-there"}},
        "RoleNotFound",
        None,
    ),
    "too-many": ({"workers": {"replicas": 11, **SMALL}}, "TooManyWorkers", None),
    "no-region": ({"region": "xx-nowhere-1"}, "UnknownRegion", None),
    "no-cluster": (
        {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/not-there"},
        "ClusterNotFound",
        None,
    ),
    "no-policy": (
        {"iam": {"taskRolePolicies": ["arn:aws:iam::123456789012:policy/not-there"]}},
        "AwsErrorAttachRolePolicy",
        "NoSuchEntity",
    ),
}


def test_bad_input_logs_one_line_each_and_no_traceback(
    k8s: Any, k8s_namespace: str, start_simulated_operator: Any
) -> None:
    ns = k8s_namespace
    operator = start_simulated_operator(env={"DASK_AWS_MAX_WORKERS": "10"})
    for name, (spec, _, _) in BAD.items():
        apply(k8s, ns, manifest(name, **spec))

    def stalled(name: str) -> dict[str, Any] | None:
        c = condition(get(k8s, ns, name), "Stalled")
        return c if c and c["status"] == "True" else None

    for name, (_, reason, _) in BAD.items():
        found = wait_for(lambda n=name: stalled(n), 60, f"{name} Stalled")  # type: ignore[misc]
        assert found["reason"] == reason, (name, found)
    log = operator.log.read_text(errors="replace")
    assert "Traceback" not in log, log
    for name, (_, reason, code) in BAD.items():
        lines = [
            line
            for line in log.splitlines()
            if re.search(rf"\b(WARNING|ERROR)\b.*\b{ns}/{name}\b", line)
        ]
        assert len(lines) == 1, (name, lines)
        assert reason in lines[0] and (code is None or code in lines[0]), lines[0]
    message = (condition(get(k8s, ns, "giant-key"), "Stalled") or {})["message"]
    assert " […] " in message and len(message.encode()) <= 4096
    assert message.endswith("at most 128 characters"), message[-200:]
    # The 2 s ticks and watch events that found nothing to do leave no line: a step that
    # did something, or failed, is what the log is for.
    assert "Timer 'resync' succeeded" not in log and "Handler 'seen' succeeded" not in log
    assert "Handler 'reconcile' succeeded" in log
