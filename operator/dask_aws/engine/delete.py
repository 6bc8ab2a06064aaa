"""Deletion of everything a cluster created: what its status records (wherever it is) and
what the current spec's names find. Tasks go first (until stopped), then the resources
in the reverse order of resources.rows(). NotFound counts as done, so the step can be
repeated after any crash. deletionPolicy Retain only marks what we own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from dask_aws.aws import network
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.tags import RETAINED
from dask_aws.engine import orphans
from dask_aws.engine.events import Event
from dask_aws.engine.observe import refs
from dask_aws.engine.resources import Place, describe, lookup, rows
from dask_aws.errors import NOT_FOUND, DaskAwsError, PermanentError, error_code, from_botocore
from dask_aws.spec import DeletionPolicy
from dask_aws.status import CreatedResource


@dataclass
class DeleteResult:
    done: bool
    events: list[Event] = field(default_factory=list)
    error: DaskAwsError | None = None


def delete(
    aws: Aws,
    target: Target,
    recorded: Sequence[CreatedResource] = (),
    *,
    discover: bool = True,
    retain: bool | None = None,
    tasks: orphans.KnownTasks | None = None,
) -> DeleteResult:
    """`recorded`: status.aws.created. `discover`: also look where the spec's names point
    (False when the spec could not be read: then only the records count). `retain`: the
    deletionPolicy, when it must not come from `target.spec`. `tasks`: the owner's live
    tasks, when the caller knows every one (then they are stopped without a listing)."""
    if retain is None:
        retain = target.spec.deletion_policy is DeletionPolicy.RETAIN
    # Nothing can have been created in a region that does not exist (reconcile refuses it).
    discover = discover and aws.known_region
    recorded = [e for e in recorded if not e.region or aws.in_region(e.region).known_region]
    try:
        entries = orphans.merge(recorded, _discovered(aws, target) if discover else [])
        if retain:
            _mark_retained(aws, entries)
            kept = describe(e.kind for e in entries if lookup(e.kind))
            message = f"Kept {kept} on AWS (deletionPolicy Retain)."
            return DeleteResult(True, [Event("Normal", "Retained", message)])
        removal = orphans.remove(aws, target, entries, wait=True, tasks=tasks)
    except (ClientError, BotoCoreError) as exc:
        return DeleteResult(False, [], from_botocore(exc, aws.identity, aws.region))
    except DaskAwsError as exc:
        return DeleteResult(False, [Event("Warning", exc.reason, exc.message)], exc)
    if removal.errors or removal.left:
        error = next(iter(removal.errors), None) or DaskAwsError(
            "DeletionPending", f"still removing {describe(e.kind for e in removal.left)}"
        )
        return DeleteResult(False, [Event("Warning", error.reason, error.message)], error)
    message = "Removed every AWS resource this cluster had created."
    return DeleteResult(True, [Event("Normal", "Deleted", message)])


def _discovered(aws: Aws, target: Target) -> list[CreatedResource]:
    """What exists under the spec's names and is ours (a crash can precede any record)."""
    try:
        vpc: network.Network | None = network.locate(aws, target)  # no egress check
    except PermanentError:
        vpc = None
    place = Place(vpc, refs(aws, target))
    found: dict[str, Found | None] = {}
    for resource in rows(target):
        try:
            found[resource.key] = resource.observe(aws, target, place)
        except PermanentError:
            continue  # not ours, or the user's reference is gone: nothing to delete
    return orphans.record(aws, found)


def _mark_retained(aws: Aws, entries: Sequence[CreatedResource]) -> None:
    for entry in entries:
        row = lookup(entry.kind)
        if row is None:
            continue  # the tasks: they keep running, tagged as their owner's
        try:
            row.tag(aws.in_region(entry.region), Found(entry.id, ours=True), {RETAINED: "true"})
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
