"""kopf handlers of DaskAwsJobs: thin, as handlers.py's; controller/jobs.py does the work."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from dask_aws.controller import jobs
from dask_aws.controller.fit import cut
from dask_aws.controller.handlers import (
    RESOURCE,
    TICK,
    apply_output,
    config_of,
    latest,
    namespace_view,
)
from dask_aws.crd import GROUP, VERSION
from dask_aws.jobs.crd import PLURAL as JOB_PLURAL

JOBS = (GROUP, VERSION, JOB_PLURAL)
DELETE_RETRY_SECONDS = 2.0


@kopf.index(*RESOURCE)  # a coroutine, as handlers.py's indexes are (it says why)
async def clusters_by_name(
    namespace: str | None, name: str, uid: str, spec: Any, status: Any, meta: Any, **_: Any
) -> Any:
    """Each DaskAwsCluster by (namespace, name), for the jobs that use them: a job reads its
    cluster's readiness and address from the watch, with no API call."""
    owners = tuple(r.get("uid", "") for r in meta.get("ownerReferences") or [])
    entry = jobs.ClusterEntry(
        uid=uid,
        spec=copy.deepcopy(dict(spec or {})),
        status=copy.deepcopy(dict(status or {})),
        deleting=bool(meta.get("deletionTimestamp")),
        owners=owners,
    )
    return {(namespace or "", name): entry}


def _clusters(kwargs: Any) -> dict[tuple[str, str], jobs.ClusterEntry]:
    """One entry per key: a name is unique in a namespace, so the store holds one."""
    return {key: next(iter(store)) for key, store in kwargs["clusters_by_name"].items() if store}


@kopf.on.resume(*JOBS, backoff=10, retries=None)
@kopf.on.create(*JOBS, backoff=10, retries=None)
@kopf.on.update(*JOBS, field="spec", backoff=10, retries=None)
def job_changed(body: Any, memo: Any, patch: Any, namespace: str | None, **kwargs: Any) -> None:
    state = jobs.state_of(memo)
    out = jobs.reconcile_job(
        latest(body, memo),
        config_of(memo),
        state,
        _clusters(kwargs),
        namespace_view(namespace, kwargs),
        force=True,
    )
    apply_output(out, body, patch, memo)


@kopf.timer(*JOBS, interval=TICK, initial_delay=TICK, backoff=10)
def job_tick(body: Any, memo: Any, patch: Any, namespace: str | None, **kwargs: Any) -> None:
    state = jobs.state_of(memo)
    out = jobs.reconcile_job(
        latest(body, memo),
        config_of(memo),
        state,
        _clusters(kwargs),
        namespace_view(namespace, kwargs),
    )
    apply_output(out, body, patch, memo)


@kopf.on.delete(*JOBS, retries=None)
def job_deleted(body: Any, memo: Any, patch: Any, **kwargs: Any) -> None:
    state = jobs.state_of(memo)
    with state.lock:
        if state.deleted:
            return
        outcome = jobs.delete_job(body, config_of(memo), _clusters(kwargs))
        state.deleted = outcome.done
    if not outcome.done:
        patch.status.update({"message": cut(f"Deleting: {outcome.message}")})
        raise kopf.TemporaryError(cut(outcome.message, 2048), delay=DELETE_RETRY_SECONDS)
