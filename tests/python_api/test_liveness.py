"""Owner liveness, as `dask-aws gc` judges it."""

from __future__ import annotations

import os
import subprocess
import sys

from dask_aws.aws import tags
from dask_aws.cluster import liveness

NOW = 1_800_000_000.0


def test_same_host_live_process_is_alive_even_without_heartbeat() -> None:
    owner = {tags.HOST: liveness.host(), tags.PROCESS: liveness.process_id()}
    assert not liveness.verdict(owner, stale_after=60, now=NOW).gone


def test_same_host_dead_process_is_gone_at_once() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(child.stdout)
    owner = {tags.HOST: liveness.host(), tags.PROCESS: f"{pid}:1", tags.HEARTBEAT: str(NOW)}
    result = liveness.verdict(owner, stale_after=3600, now=NOW)
    assert result.gone and "has exited" in result.reason


def test_reused_pid_is_not_mistaken_for_the_owner() -> None:
    # Same pid, different start time: another process now has the number.
    owner = {tags.HOST: liveness.host(), tags.PROCESS: f"{os.getpid()}:1"}
    assert liveness.verdict(owner, stale_after=3600, now=NOW).gone


def test_other_host_goes_by_heartbeat_age() -> None:
    owner = {tags.HOST: "elsewhere", tags.PROCESS: "1:1", tags.HEARTBEAT: str(NOW - 30)}
    assert not liveness.verdict(owner, stale_after=600, now=NOW).gone
    owner[tags.HEARTBEAT] = str(NOW - 601)
    assert liveness.verdict(owner, stale_after=600, now=NOW).gone


def test_no_liveness_tags_is_never_gone() -> None:
    assert not liveness.verdict({}, stale_after=0, now=NOW).gone


def test_labels_carry_host_process_heartbeat_and_shared_cluster() -> None:
    labels = dict(liveness.labels("arn:aws:ecs:us-east-1:123456789012:cluster/shared"))
    assert labels[tags.HOST] == liveness.host()
    assert labels[tags.PROCESS].startswith(f"{os.getpid()}:")
    assert labels[tags.ECS_CLUSTER] == "shared"
    assert float(labels[tags.HEARTBEAT]) > 0
    assert tags.ECS_CLUSTER not in dict(liveness.labels(None))
