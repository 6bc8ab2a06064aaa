"""The status as a JSON merge patch of only what changed, so a quiet step writes nothing.

Every write to the API server bumps resourceVersion, wakes every watcher (kopf itself,
Argo CD, Flux) and costs etcd a revision; with a thousand objects resynced each minute,
unchanged statuses would be a thousand writes a minute for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def merge_patch(current: Any, desired: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: the keys whose values differ; None removes a key; lists are replaced whole
    (Kubernetes merges a custom resource's lists no other way)."""
    old = current if isinstance(current, dict) else {}
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif value is None:
            if before is not None:
                patch[key] = None
        elif value != before:
            patch[key] = value
    return patch


@dataclass(frozen=True)
class Written:
    """The status this process last patched, and the resourceVersion of kopf's copy of the
    object when it did: while kopf's copy still has that version, it predates the patch."""

    status: dict[str, Any]
    version: str | None


def status_patch(
    current: Any, written: Written | None, desired: dict[str, Any], version: str | None
) -> dict[str, Any]:
    """The patch that makes an object's status `desired`. `current` is kopf's copy of the
    object at resourceVersion `version`; it lags behind the API server when the watch stream
    is slow (a thousand objects changing at once), and `written` is what this operator last
    patched. A copy from before that patch says nothing the patch did not overwrite, so only
    the difference from `written` goes (against the copy, a quiet step would send its whole
    status again to make no change). A newer copy may hold what somebody else wrote, or what
    our patch did not get to write when it failed, so then whatever differs from either goes."""
    if written is None:
        return merge_patch(current, desired)
    since_written = merge_patch(written.status, desired)
    if version is not None and version == written.version:
        return since_written
    return _union(since_written, merge_patch(current, desired))


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        before = merged.get(key)
        merged[key] = (
            _union(before, value) if isinstance(value, dict) and isinstance(before, dict) else value
        )
    return merged
