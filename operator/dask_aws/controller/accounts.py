"""Whose AWS identity a cluster's calls use: the operator's own, or the role its
namespace's DaskAwsPolicy names (assumed through STS, refreshed and cached by
aws/identity.py). The role is recorded in the cluster's status, so deletion and the
connection Secret use it even after the policy has changed or gone."""

from __future__ import annotations

import threading

import boto3

from dask_aws.aws import identity
from dask_aws.aws.clients import Aws, connect
from dask_aws.controller import metrics
from dask_aws.controller.config import OperatorConfig

_clients: dict[str, Aws] = {}
_clients_lock = threading.Lock()


def aws_for(
    region: str | None,
    config: OperatorConfig,
    role_arn: str | None = None,
    external_id: str | None = None,
) -> Aws:
    """Clients for `region` (default: the operator's) as the operator, or as `role_arn`.
    Raises PermanentError AssumeRoleFailed when STS refuses the role."""
    key = region or config.region or ""
    if role_arn:
        return identity.connect_as(
            boto3.Session(),
            role_arn,
            external_id,
            key or None,
            instrument=metrics.instrument,
        )
    with _clients_lock:
        if key not in _clients:
            _clients[key] = connect(
                region=key or None,
                session=metrics.instrument(boto3.Session()),
                identity="the operator's IAM identity",
            )
        return _clients[key]
