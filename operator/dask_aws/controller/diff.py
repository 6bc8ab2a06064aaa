"""The status as a JSON merge patch of only what changed, so a quiet step writes nothing.

Every write to the API server bumps resourceVersion, wakes every watcher (kopf itself,
Argo CD, Flux) and costs etcd a revision; with a thousand objects resynced each minute,
unchanged statuses would be a thousand writes a minute for nothing.
"""

from __future__ import annotations

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


def status_patch(
    current: Any, written: dict[str, Any] | None, desired: dict[str, Any]
) -> dict[str, Any]:
    """The patch that makes an object's status `desired`. `current` is kopf's copy of the
    object, which lags behind the API server when the watch stream is slow (a thousand
    objects starting at once); `written` is the status this operator last patched. A field
    the lagging copy shows as already desired may still hold what the last patch wrote, so
    whatever differs from either goes: at most a few fields more, never a lost update."""
    patch = merge_patch(current, desired)
    return patch if written is None else _union(merge_patch(written, desired), patch)


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        before = merged.get(key)
        merged[key] = (
            _union(before, value) if isinstance(value, dict) and isinstance(before, dict) else value
        )
    return merged
