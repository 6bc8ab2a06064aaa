"""The liveness probe fails when the watch stops delivering changes (dask-kubernetes #620)."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from dask_aws.controller import handlers, kube


def test_probe_passes_while_the_watch_keeps_up_and_fails_when_it_stalls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = {"uid-1": "10"}
    clock = [1000.0]
    monkeypatch.setattr(kube, "list_cluster_versions", lambda namespaces: dict(listed))
    monkeypatch.setattr(handlers.time, "monotonic", lambda: clock[0])
    memo: dict[str, Any] = {}
    asyncio.run(
        handlers.seen(body={"metadata": {"uid": "uid-1", "resourceVersion": "10"}}, memo=memo)
    )
    assert handlers.watch_is_alive(memo=memo) == {"clusters": 1}

    listed["uid-1"] = "11"  # changed on the server; the watch has not told us yet
    assert handlers.watch_is_alive(memo=memo) == {"clusters": 1}  # a short lag is fine
    clock[0] += handlers.WATCH_STALL_SECONDS + 1
    with pytest.raises(kopf.PermanentError, match="watch stalled"):
        handlers.watch_is_alive(memo=memo)

    asyncio.run(
        handlers.seen(body={"metadata": {"uid": "uid-1", "resourceVersion": "11"}}, memo=memo)
    )
    assert handlers.watch_is_alive(memo=memo) == {"clusters": 1}  # caught up: healthy again
