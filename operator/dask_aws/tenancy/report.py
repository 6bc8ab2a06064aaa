"""A DaskAwsPolicy's status: the namespace's usage and a Ready condition naming the limits
of this policy that are reached or nearly reached."""

from __future__ import annotations

from decimal import Decimal

from dask_aws.status import ConditionType, set_condition
from dask_aws.tenancy.merge import LIMIT_KEYS, effective
from dask_aws.tenancy.spec import DaskAwsPolicySpec, DaskAwsPolicyStatus
from dask_aws.tenancy.usage import Usage, show

NEAR = Decimal("0.8")  # "near" from 80% of a limit: early enough to ask for more
WITHIN = "WithinLimits"
AT_LIMIT = "LimitReached"
CONFLICT = "PolicyConflict"


def limit_message(used: Usage, spec: DaskAwsPolicySpec) -> str:
    """E.g. "at the limit: workers 10/10; near the limit: vcpu 60/64"."""
    limits = effective([("-", spec)]).limits
    at, near = [], []
    for key in LIMIT_KEYS:
        limit = limits.get(key)
        if limit is None:
            continue
        amount = f"{key} {show(used.get(key))}/{show(limit.value)}"
        if used.get(key) >= limit.value:
            at.append(amount)
        elif used.get(key) >= limit.value * NEAR:
            near.append(amount)
    parts = [
        f"{label}: {', '.join(found)}"
        for label, found in (("at the limit", at), ("near the limit", near))
        if found
    ]
    return "; ".join(parts) or "within the limits"


def policy_status(
    spec: DaskAwsPolicySpec,
    used: Usage,
    generation: int | None,
    previous: DaskAwsPolicyStatus | None = None,
    conflict: str | None = None,
) -> DaskAwsPolicyStatus:
    """The status to write: Ready False with `conflict` (a PolicyConflict's message) when
    the namespace's policies do not merge, else Ready True with limit_message."""
    conditions = list(previous.conditions) if previous else []
    if conflict:
        ready, reason, message = False, CONFLICT, conflict
    else:
        message = limit_message(used, spec)
        ready, reason = True, AT_LIMIT if message.startswith("at the limit") else WITHIN
    conditions = set_condition(conditions, ConditionType.READY, ready, reason, message, generation)
    return DaskAwsPolicyStatus(
        used=used.as_status(), observed_generation=generation, conditions=conditions
    )
