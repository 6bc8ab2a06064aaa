"""Specs whose tasks die as they start, on the local AWS with real Dask processes: the
operator relaunches a few times with growing delays, then stops launching and says why
(Stalled, reason CrashLoop, with the task's stop reason), and the object stays deletable.
RunTask calls are counted server-side, per owner, from the local AWS's request recording.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.fixtures.leaks import tagged_resources
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.recorded_aws import RecordedAws
from tests.fixtures.shared_operator import (
    document,
    module_operator,
    objects,
    regional,
    small_spec,
    stalled,
    wait_stalled,
)

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

MISSING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nobody-made-this-AbCdEf"
# 4 failed starts stall a component: at most 4 tasks of it, plus a scheduler that ran.
MAX_RUN_TASKS = 10
STALL_TIMEOUT = 180.0


@dataclass(frozen=True)
class Loop:
    id: str
    spec: dict[str, Any]
    component: str  # whose tasks die
    stop_reason: str  # in the Stalled message: what ECS said about the last task
    # The Stalled reason: CrashLoop, or for a task ECS cannot even start, AWS's own word.
    reasons: tuple[str, ...] = ("CrashLoop",)


LOOPS = [
    Loop(
        "memory-limit-lots",
        small_spec(workers={"replicas": 1, "cpu": 512, "memory": 1024, "memoryLimit": "lots"}),
        "worker",
        "Essential container in task exited",
    ),
    # 8787 is also the dashboard's port: the scheduler cannot listen twice on it.
    Loop(
        "port-is-dashboard-port",
        small_spec(scheduler={"cpu": 512, "memory": 1024, "port": 8787, "dashboardPort": 8787}),
        "scheduler",
        "Essential container in task exited",
    ),
    Loop(
        "missing-secret",
        small_spec(secrets={"TOKEN": MISSING_SECRET}),
        "scheduler",
        "ResourceInitializationError",
        ("CrashLoop", "TaskFailedToStart", "ResourceInitializationError"),
    ),
]


@dataclass
class Module:
    namespace: str
    operator: OperatorProcess
    aws: RecordedAws
    refused: dict[str, str]  # loop id -> the API server's error, where it refused the spec


@pytest.fixture(scope="module")
def module(k8s: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Module]:
    """One operator on a local AWS of its own (real processes, requests recorded), with
    every crash-looping cluster applied at once."""
    log_dir = tmp_path_factory.mktemp("crash-loops")
    with (
        RecordedAws(simulated=False) as aws,
        module_operator(k8s, aws.local, log_dir, "crash-loops") as (ns, operator),
    ):
        refused = {}
        for loop in LOOPS:
            text = yaml.safe_dump(document(loop.id, loop.spec))
            proc = k8s.kubectl("apply", "-n", ns, "-f", "-", input=text, check=False)
            if proc.returncode != 0:
                refused[loop.id] = proc.stderr
        yield Module(ns, operator, aws, refused)


@pytest.mark.parametrize("loop", LOOPS, ids=[loop.id for loop in LOOPS])
def test_task_that_dies_as_it_starts_stalls_the_cluster_after_few_launches(
    module: Module, k8s: Any, loop: Loop
) -> None:
    ns = module.namespace
    if loop.id in module.refused:
        # The API server refusing such a spec outright is as good, if it says why.
        assert "spec." in module.refused[loop.id], module.refused[loop.id]
        return
    obj = wait_stalled(k8s, ns, loop.id, STALL_TIMEOUT)
    condition = stalled(obj)
    assert condition is not None
    assert condition["reason"] in loop.reasons, condition
    message = condition["message"]
    if condition["reason"] == "CrashLoop":
        assert message.startswith(f"{loop.component} tasks stopped"), message
    assert loop.stop_reason in message, message
    assert obj["status"]["phase"] == "Failed"
    uid = obj["metadata"]["uid"]
    launches = module.aws.run_task_calls()[uid]
    assert 0 < launches < MAX_RUN_TASKS, launches
    # The tasks ECS knows of for this owner agree: nothing was started another way.
    aws = regional(module.aws.local, "us-east-1")
    cluster = obj["status"]["aws"]["clusterArn"]
    tasks = [
        arn
        for status in ("RUNNING", "STOPPED")
        for arn in aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus=status)[
            "taskArns"
        ]
    ]
    assert len(tasks) == launches, (tasks, launches)

    k8s.kubectl("delete", "dac", loop.id, "-n", ns, "--timeout=90s", timeout=120)
    assert loop.id not in objects(k8s, ns)
    assert tagged_resources(aws, uid) == []
    # Stalled meant stalled: no launch after the verdict, nor during the deletion.
    assert module.aws.run_task_calls()[uid] == launches
