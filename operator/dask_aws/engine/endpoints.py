"""How this process reaches a cluster's scheduler as a client: address and credentials."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from dask_aws.aws import tls_secret
from dask_aws.aws.clients import Aws
from dask_aws.aws.task_definitions import comm_address
from dask_aws.engine.scheduler_api import Endpoint, SchedulerUnreachable
from dask_aws.spec import DaskAwsClusterSpec


def endpoint(
    aws: Aws,
    spec: DaskAwsClusterSpec,
    ip: str | None,
    secret_arn: str | None,
    version: str | None = None,
) -> Endpoint:
    """The scheduler at `ip`, with the cluster's client certificate when it speaks TLS."""
    address = comm_address(spec, ip)
    if not spec.tls.enabled:
        return Endpoint(address)
    if not secret_arn:
        raise SchedulerUnreachable(f"{address}: the cluster's TLS secret is not known yet")
    try:
        bundle = tls_secret.bundle(aws, secret_arn, version)
    except (ClientError, BotoCoreError) as exc:
        raise SchedulerUnreachable(
            f"{address}: the cluster's client certificate could not be read from {secret_arn}: "
            f"{exc}"
        ) from exc
    return Endpoint(address, bundle.client_security())
