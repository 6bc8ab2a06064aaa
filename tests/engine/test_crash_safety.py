"""Kill the step at any AWS call, run it again: no duplicate, no extra worker, no leak."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from dask_aws.aws.found import Target
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from tests.fixtures.aws_clients import READ_PREFIXES, aws_for
from tests.fixtures.engine import converge, target
from tests.fixtures.leaks import tagged_resources


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine may catch it."""


def _crash_at(session: Any, event: str, k: int) -> None:
    seen = {"n": 0}

    def hook(model: Any, **_: Any) -> None:
        if model.name.startswith(READ_PREFIXES):
            return
        seen["n"] += 1
        if seen["n"] == k:
            raise Crash(f"{event} {model.name}")

    session.events.register(event, hook)


def _live(aws: Any, tgt: Target) -> dict[str, int]:
    counts = {"scheduler": 0, "worker": 0}
    for cluster in aws.ecs.list_clusters()["clusterArns"]:
        arns = aws.ecs.list_tasks(
            cluster=cluster, startedBy=tgt.owner.uid, desiredStatus="RUNNING"
        )["taskArns"]
        for task in aws.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []:
            if task["desiredStatus"] == "RUNNING":
                counts[task["group"].split(":")[1]] += 1
    return counts


# Creation makes about 14 mutating calls; these points cover every resource kind.
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
@pytest.mark.parametrize("event", ["before-call", "after-call"])
def test_crash_during_create_then_rerun_converges(
    local_aws_simulated: Any, event: str, k: int
) -> None:
    tgt = target(f"crash-{k}", workers={"replicas": 12, "cpu": 1024, "memory": 2048})
    doomed, _ = aws_for(local_aws_simulated.endpoint_url)
    _crash_at(doomed.session, event, k)
    with pytest.raises(Crash):
        for _ in range(50):
            reconcile(doomed, tgt)

    fresh, _ = aws_for(local_aws_simulated.endpoint_url)  # a new process knows nothing
    status = converge(fresh, tgt).status
    assert status.replicas == 12
    assert _live(fresh, tgt) == {"scheduler": 1, "worker": 12}
    assert delete(fresh, tgt).done
    assert tagged_resources(fresh, tgt.owner.uid) == []


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 10, 12, 14, 16, 18])
@pytest.mark.parametrize("event", ["before-call", "after-call"])
def test_crash_during_delete_then_rerun_leaks_nothing(
    local_aws_simulated: Any, event: str, k: int
) -> None:
    tgt = target(f"crash-del-{k}", workers={"replicas": 3, "cpu": 1024, "memory": 2048})
    setup, _ = aws_for(local_aws_simulated.endpoint_url)
    converge(setup, tgt)
    doomed, _ = aws_for(local_aws_simulated.endpoint_url)
    _crash_at(doomed.session, event, k)
    with contextlib.suppress(Crash):
        delete(doomed, tgt)
    fresh, _ = aws_for(local_aws_simulated.endpoint_url)
    assert delete(fresh, tgt).done
    assert tagged_resources(fresh, tgt.owner.uid) == []


def test_sigkilled_process_mid_create_is_finished_by_another(local_aws_simulated: Any) -> None:
    tgt = target("sigkill", workers={"replicas": 10, "cpu": 1024, "memory": 2048})
    script = textwrap.dedent(f"""
        import os, signal
        from dask_aws.aws.found import Target
        from dask_aws.engine.reconcile import reconcile
        from dask_aws.names import Owner
        from dask_aws.spec import DaskAwsClusterSpec
        from tests.fixtures.aws_clients import aws_for
        aws, log = aws_for({local_aws_simulated.endpoint_url!r})
        def die(model, **_):
            if model.name == "RunTask" and log.calls.count("RunTask") == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        aws.session.events.register("after-call", die)
        owner = Owner(uid={tgt.owner.uid!r}, name="sigkill", namespace="team-a")
        spec = DaskAwsClusterSpec.model_validate({tgt.spec.wire()!r})
        for _ in range(100):
            reconcile(aws, Target(owner, spec))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    assert _live(aws, tgt)["worker"] == 10  # the killed process had started all ten
    converge(aws, tgt)
    assert _live(aws, tgt) == {"scheduler": 1, "worker": 10}
    assert delete(aws, tgt).done
    assert tagged_resources(aws, tgt.owner.uid) == []
