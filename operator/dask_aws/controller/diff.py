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
