"""A namespace's DaskAwsPolicies applied to one step of one cluster: defaults merged into
its spec, the allowlists, admission against the limits (a cluster over them is Stalled,
QuotaExceeded, with nothing created), worker targets clamped, and the usage each
policy's status shows. Policies and the namespace's clusters come from kopf indexes,
filled from the watch before any handler runs, so a step makes no extra API call.

A cluster counts toward its namespace's usage once admitted: when its status records
AWS resources, or when this process admitted it (before its first status is written;
the lock keeps two new clusters from both taking the last place).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from dask_aws.controller import metrics
from dask_aws.errors import PermanentError
from dask_aws.spec import DaskAwsClusterSpec
from dask_aws.status import ClusterStatus
from dask_aws.tenancy import merge, report, usage
from dask_aws.tenancy.merge import Effective
from dask_aws.tenancy.spec import DaskAwsPolicySpec, DaskAwsPolicyStatus
from dask_aws.tenancy.usage import Usage

logger = logging.getLogger(__name__)

QUOTA_EXCEEDED = "QuotaExceeded"
FORBIDDEN = "Forbidden"
RECHECK_SECONDS = 10.0  # a blocked cluster looks again this often (no AWS call)


class PolicyError(PermanentError):
    """Stalled, but looked at again every RECHECK_SECONDS: a policy may change, another
    cluster may go, without this object's spec changing (step.py schedules that)."""


@dataclass(frozen=True)
class Namespace:
    """What the indexes hold for one namespace."""

    policies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # name, spec
    clusters: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)


_lock = threading.Lock()
_admitted: dict[str, set[str]] = {}  # namespace -> uids admitted by this process


def effective(view: Namespace) -> Effective:
    specs: list[tuple[str, DaskAwsPolicySpec]] = []
    for name, raw in sorted(view.policies, key=lambda p: p[0]):
        try:
            specs.append((name, DaskAwsPolicySpec.model_validate(raw)))
        except ValidationError as exc:  # the API server validates; an older schema may not
            logger.warning("DaskAwsPolicy %s is not valid and is ignored: %s", name, exc)
    try:
        return merge.effective(specs)
    except merge.PolicyConflict as exc:
        raise PolicyError("PolicyConflict", str(exc)) from exc


def with_defaults(raw: Any, eff: Effective) -> dict[str, Any]:
    return merge.apply_defaults(dict(raw or {}), eff)


def check(spec: DaskAwsClusterSpec, eff: Effective) -> None:
    problems = merge.forbidden(spec, eff)
    if problems:
        raise PolicyError(FORBIDDEN, "; ".join(problems))


def _admitted_by_status(status: Mapping[str, Any] | None) -> bool:
    aws = (status or {}).get("aws") or {}
    return bool(aws.get("created") or aws.get("schedulerTaskArn"))


def _usage(raw_spec: Mapping[str, Any], raw_status: Mapping[str, Any], eff: Effective) -> Usage:
    try:
        spec = DaskAwsClusterSpec.model_validate(with_defaults(raw_spec, eff))
    except ValidationError:
        return usage.Usage()  # Stalled InvalidSpec: nothing runs
    return usage.usage_of(spec, ClusterStatus.lenient(raw_status))


def others(uid: str, namespace: str, view: Namespace, eff: Effective) -> Usage:
    """What the namespace's other admitted clusters hold."""
    mine = _admitted.get(namespace, set())
    return _sum(
        _usage(spec, status, eff)
        for other, spec, status in view.clusters
        if other != uid and (_admitted_by_status(status) or other in mine)
    )


def _sum(parts: Iterable[Usage]) -> Usage:
    total = usage.Usage()
    for part in parts:
        total = total + part
    return total


def admit(
    uid: str,
    namespace: str,
    spec: DaskAwsClusterSpec,
    status: Mapping[str, Any] | None,
    view: Namespace,
    eff: Effective,
) -> None:
    """Raise QuotaExceeded when this not yet admitted cluster would exceed a limit."""
    with _lock:
        if _admitted_by_status(status) or uid in _admitted.get(namespace, set()):
            return
        problems = usage.exceeded(
            usage.usage_of(spec, None), others(uid, namespace, view, eff), eff
        )
        if problems:
            raise PolicyError(
                QUOTA_EXCEEDED,
                "Nothing was created: " + "; ".join(problems) + ". It starts by itself once "
                "the namespace has room (another cluster deleted or scaled down, or the "
                "policy raised).",
            )
        _admitted.setdefault(namespace, set()).add(uid)


def clamp(
    uid: str,
    namespace: str,
    spec: DaskAwsClusterSpec,
    targets: Mapping[str, int],
    view: Namespace,
    eff: Effective,
) -> tuple[dict[str, int], str | None]:
    """The worker targets lowered to what the limits leave, and why (None: unchanged)."""
    if not any(key in eff.limits for key in usage.CLAMPED):
        # Every step of every cluster comes here: without a limit to clamp to, the
        # namespace's other clusters (a spec parse each) need not be counted.
        return dict(targets), None
    with _lock:
        held = others(uid, namespace, view, eff)
    return usage.clamp(spec, targets, held, eff)


def forget(namespace: str, uid: str) -> None:
    """The cluster is gone: its place is free."""
    with _lock:
        _admitted.get(namespace, set()).discard(uid)


def used(namespace: str, view: Namespace, eff: Effective) -> Usage:
    """The namespace's usage, as every policy's status shows it."""
    with _lock:
        return others("", namespace, view, eff)


def policy_status(namespace: str, body: Any, view: Namespace) -> dict[str, Any]:
    """A policy's status: the namespace's usage (the same keys as its limits)."""
    conflict = None
    try:
        eff = effective(view)
    except PolicyError as exc:
        eff, conflict = merge.effective([]), exc.message  # counted without their defaults
    spec = DaskAwsPolicySpec.model_validate(body.get("spec") or {})
    previous = body.get("status") or {}
    try:
        before = DaskAwsPolicyStatus.model_validate(previous) if previous else None
    except ValidationError:
        before = None
    now = used(namespace, view, eff)
    metrics.observe_quota(
        namespace,
        {key: float(now.get(key)) for key in merge.LIMIT_KEYS},
        {key: float(limit.value) for key, limit in eff.limits.items()},
    )
    status = report.policy_status(spec, now, body["metadata"].get("generation"), before, conflict)
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)
