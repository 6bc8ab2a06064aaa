"""kopf handlers: thin. Every one of them calls step.py and hands its output to kopf."""

from __future__ import annotations

import copy
import logging
import socket
import time
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from dask_aws.controller import kube, step, tenancy
from dask_aws.controller.config import OperatorConfig
from dask_aws.controller.diff import Written, merge_patch, status_patch
from dask_aws.controller.fit import cut
from dask_aws.controller.state import of
from dask_aws.crd import GROUP, PLURAL, VERSION
from dask_aws.tenancy.crd import PLURAL as POLICY_PLURAL

RESOURCE = (GROUP, VERSION, PLURAL)
POLICIES = (GROUP, VERSION, POLICY_PLURAL)
POLICY_SECONDS = 10.0  # how often a policy's status.used is brought up to date
FINALIZER = f"{GROUP}/finalizer"
TICK = 2.0  # how often each object's timer wakes; step.py decides whether anything is due
WRITTEN = "dask_aws_written_status"  # memo key: the status this process last patched
WATCH_STALL_SECONDS = 60.0
TIMER_EXIT_WAIT_SECONDS = 20.0
CANCELLATION_POLL_SECONDS = 1.0
CONSISTENCY_SECONDS = 60.0
#: Events' source and reportingComponent (the "From" column of `kubectl describe`).
REPORTING_COMPONENT = "dask-aws-operator"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.CRITICAL  # Events come from step.py, not from log lines
    # Events name this operator, not the framework ("kopf"/"dev"), and which replica
    # posted them: the pod's name is its hostname.
    settings.posting.reporting_component = REPORTING_COMPONENT
    settings.posting.reporting_instance = socket.gethostname()[:128]
    settings.watching.server_timeout = 300  # recycle watches, so a silent one cannot last
    settings.watching.client_timeout = 330
    settings.execution.max_workers = kube.HANDLER_THREADS
    # No cluster-scoped reads: the CRD is installed before the operator starts and the
    # namespaces are named exactly, so kopf need not watch CRDs or namespaces (the chart's
    # namespaced mode then grants nothing cluster-wide).
    settings.scanning.disabled = True
    # A deletion stops the object's timer; kopf keeps the finalizer until the timer has
    # exited. A timer caught mid-reconcile cannot be cancelled (it runs in a thread), and
    # kopf then looks again only every cancellation_polling seconds (default 60), which
    # `kubectl delete` waited for. Instead: wait for the reconcile to end (the delete
    # handler could not start before that anyway; the wait ends as soon as the timer
    # exits, at once for an idle one), and poll often should one outlast it.
    settings.background.instant_exit_timeout = TIMER_EXIT_WAIT_SECONDS
    # After a handler's patch kopf holds the object's next handler until the watch brings
    # the patched version, for 5 s by default. Creating a thousand clusters, the watch
    # brought it later than that; kopf then took an older copy, without the annotation
    # that says the creation was handled, and ran the creation again (1,116 creation
    # handlers too many, 2,135 Kubernetes writes in a quiet minute). The patched version
    # always comes: kopf's own annotations change with every handler's patch.
    settings.persistence.consistency_timeout = CONSISTENCY_SECONDS
    settings.background.cancellation_polling = CANCELLATION_POLL_SECONDS


def config_of(memo: Any) -> OperatorConfig:
    config = memo.get("config")
    return config if isinstance(config, OperatorConfig) else OperatorConfig()


def latest(body: Any, memo: Any) -> Any:
    """kopf's copy of the object with the status this process last wrote. Only this
    operator writes the status, so what it wrote is the status; kopf's copy comes from the
    watch stream, which falls minutes behind when a thousand objects change at once, and a
    step that took a status from before its first write for the status itself would start
    every condition's lastTransitionTime and the cost's accrual over. After a restart
    nothing was written yet, and kopf's copy (listed at start) is the status."""
    written = memo.get(WRITTEN)
    return body if written is None else {**body, "status": written.status}


def apply_output(out: step.StepOutput, body: Any, patch: Any, memo: Any) -> None:
    if out.status is not None:
        # An empty patch is not sent: kopf skips it.
        version = body.get("metadata", {}).get("resourceVersion")
        patch.status.update(
            status_patch(body.get("status"), memo.get(WRITTEN), out.status, version)
        )
        memo[WRITTEN] = Written(out.status, version)
    for event in out.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])
    if out.delete_object:
        try:
            kube.delete_cluster_object(body["metadata"]["namespace"], body["metadata"]["name"])
        except (ApiException, HTTPError, OSError) as exc:
            # Reported, not raised: the status above is patched all the same, and the next
            # step, the cluster still idle, tries again.
            kopf.event(body, type="Warning", reason="IdleDeleteFailed", message=str(exc)[:1024])


# What a step needs of its namespace, kept by kopf from the watches (filled before any
# handler runs): the DaskAwsPolicies and the clusters with their spec and status.
# The indexes and `seen` run for every watch event and touch no AWS: they are coroutines,
# run on kopf's loop. As functions they ran in the 16 threads that the steps' AWS calls
# fill while a thousand clusters are created, and an object's events waited there for
# minutes: its handlers and timer were given copies that old.
@kopf.index(*POLICIES)
async def policies_by_namespace(namespace: str | None, name: str, spec: Any, **_: Any) -> Any:
    return {namespace: (name, copy.deepcopy(dict(spec)))}


@kopf.index(*RESOURCE)
async def clusters_by_namespace(
    namespace: str | None, uid: str, spec: Any, status: Any, meta: Any, **_: Any
) -> Any:
    if meta.get("deletionTimestamp"):
        return None  # going: its quota is as good as free
    return {namespace: (uid, copy.deepcopy(dict(spec)), copy.deepcopy(dict(status or {})))}


def namespace_view(namespace: str | None, kwargs: Any) -> tenancy.Namespace:
    """The namespace as the indexes (handler keyword arguments named after them) hold it."""
    policies, clusters = kwargs["policies_by_namespace"], kwargs["clusters_by_namespace"]
    return tenancy.Namespace(
        policies=list(policies.get(namespace, [])), clusters=list(clusters.get(namespace, []))
    )


@kopf.on.resume(*RESOURCE, backoff=10, retries=None)
@kopf.on.create(*RESOURCE, backoff=10, retries=None)
@kopf.on.update(*RESOURCE, field="spec", backoff=10, retries=None)
def reconcile(body: Any, memo: Any, patch: Any, namespace: str | None, **kwargs: Any) -> None:
    view = namespace_view(namespace, kwargs)
    out = step.reconcile_object(
        latest(body, memo), config_of(memo), of(memo), force=True, view=view
    )
    apply_output(out, body, patch, memo)


@kopf.timer(*RESOURCE, interval=TICK, initial_delay=TICK, backoff=10)
def resync(body: Any, memo: Any, patch: Any, namespace: str | None, **kwargs: Any) -> None:
    view = namespace_view(namespace, kwargs)
    out = step.reconcile_object(latest(body, memo), config_of(memo), of(memo), view=view)
    apply_output(out, body, patch, memo)


@kopf.timer(*POLICIES, interval=POLICY_SECONDS, initial_delay=1.0, backoff=10)
def policy_usage(body: Any, patch: Any, namespace: str | None, **kwargs: Any) -> None:
    """status.used: the namespace's usage, as a ResourceQuota shows it."""
    status = tenancy.policy_status(namespace or "", body, namespace_view(namespace, kwargs))
    patch.status.update(merge_patch(body.get("status"), status))


@kopf.on.delete(*RESOURCE, retries=None)
def delete(body: Any, memo: Any, patch: Any, retry: int, **_: Any) -> None:
    state = of(memo)
    with state.lock:  # never alongside a reconcile of the same object
        if state.deleted:
            # Done already: kopf calls again when a busy timer held the finalizer.
            return
        result = step.delete_object(body, config_of(memo))
        state.deleted = result.done
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])
    if not result.done:
        message = result.error.message if result.error else "deletion in progress"
        patch.status.update({"phase": "Deleting", "message": cut(message)})
        kopf.event(body, type="Warning", reason="DeletionBlocked", message=message[:1024])
        # kopf logs a TemporaryError as one line (no traceback): the reason and AWS's code.
        text = cut(step.describe(result.error) if result.error else message, step.LOG_MESSAGE_BYTES)
        raise kopf.TemporaryError(text, delay=min(300, 5 * 2 ** min(retry, 6)))


@kopf.on.event(*RESOURCE)
async def seen(body: Any, memo: Any, **_: Any) -> None:
    meta = body.get("metadata", {})
    if meta.get("uid"):
        memo.setdefault("seen", {})[meta["uid"]] = meta.get("resourceVersion")


@kopf.on.probe(id="watch")
def watch_is_alive(memo: Any, **_: Any) -> dict[str, int]:
    """Fails when an object changed on the API server but the watch never told us."""
    seen, mismatch = memo.setdefault("seen", {}), memo.setdefault("mismatch", {})
    listed = kube.list_cluster_versions(config_of(memo).namespaces)
    now = time.monotonic()
    for uid, version in listed.items():
        if seen.get(uid) == version:
            mismatch.pop(uid, None)
        elif now - mismatch.setdefault(uid, now) > WATCH_STALL_SECONDS:
            raise kopf.PermanentError(f"watch stalled: {uid} changed {version} unseen")
    return {"clusters": len(listed)}
