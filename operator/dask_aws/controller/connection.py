"""The connection Secret: written after the AWS work, so it must never cost the status.

It holds what a Dask client needs: the scheduler's address and, for TLS clusters, the CA
and the client certificate and key (ca.crt, tls.crt, tls.key), read from the cluster's
Secrets Manager secret. Kubernetes RBAC on this Secret decides who may connect.

A failure to write it (RBAC, the API server, quota, the secret unreadable) is reported,
not raised: a Warning Event, a note on the Ready condition and one log line. The write is
retried at the next reconcile because what it holds is only remembered once written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from dask_aws import certs
from dask_aws.controller import kube
from dask_aws.controller.state import ObjectState
from dask_aws.engine.events import Event
from dask_aws.status import ClusterStatus, ConditionType

logger = logging.getLogger("dask_aws.operator")
FAILED = "ConnectionSecretFailed"


def sync(
    meta: Any,
    status: ClusterStatus,
    state: ObjectState,
    credentials: Callable[[str], certs.Bundle],
) -> Event | None:
    """Write the Secret when what it holds changed; an Event to post, if any.

    `credentials(secret_arn)`: the cluster's certificates, read only when a write is due."""
    if not status.scheduler_address:
        return None
    written = (status.scheduler_address, status.tls.not_after if status.tls else None)
    if written == state.connection_written:
        return None
    name = kube.secret_name(meta["name"])
    try:
        data = {
            "scheduler-address": status.scheduler_address,
            "dashboard-address": status.dashboard_address or "",
        }
        if status.aws.tls_secret_arn:
            bundle = credentials(status.aws.tls_secret_arn)
            data |= {
                "ca.crt": bundle.ca,
                "tls.crt": bundle.client_cert,
                "tls.key": bundle.client_key,
            }
        kube.upsert_connection_secret(meta["namespace"], meta["name"], meta["uid"], data)
    except Exception as exc:
        problem = f"the connection Secret {name} could not be written: {_why(exc)}"
        # The API or AWS refusing or unreachable is expected (one line); anything else is a
        # bug (a traceback). Either way the status computed from the AWS work is kept.
        expected = isinstance(exc, ApiException | HTTPError | OSError | ClientError | BotoCoreError)
        where = f"{meta['namespace']}/{meta['name']}"
        logger.warning("%s: %s: %s", where, FAILED, problem, exc_info=not expected)
        return Event("Warning", FAILED, problem)
    state.connection_written = written
    holds = "address and the client certificate" if status.tls else "address"
    return Event(
        "Normal", "ConnectionSecretWritten", f"Secret {name} now holds the scheduler's {holds}."
    )


def note(status: dict[str, Any], event: Event | None) -> None:
    """Add a Secret failure to the Ready condition's message (status as patched)."""
    if event is None or event.reason != FAILED:
        return
    for condition in status.get("conditions") or []:
        if condition.get("type") == ConditionType.READY.value:
            parts = (condition.get("message"), event.message)
            condition["message"] = "; ".join(m for m in parts if m)


def delete(meta: Any) -> None:
    """Delete the Secret; a failure only leaves it to the garbage collector (it is owned)."""
    try:
        kube.delete_connection_secret(meta["namespace"], meta["name"])
    except (ApiException, HTTPError, OSError) as exc:
        logger.warning(
            "%s/%s: %s: not deleted (%s); the garbage collector removes it with the object",
            meta["namespace"],
            meta["name"],
            FAILED,
            _why(exc),
        )


def _why(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        try:  # the API server's Status object says it best
            detail = str(json.loads(exc.body or "")["message"])
        except (ValueError, KeyError, TypeError):
            detail = str(exc.body or "")[:300]
        return f"HTTP {exc.status} {exc.reason}: {detail}".strip()
    return str(exc) or type(exc).__name__
