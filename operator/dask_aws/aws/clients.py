"""boto3 clients with botocore's own retry mode; no hand-made retry loops anywhere."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from dask_aws.errors import DEFAULT_IDENTITY

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

DEFAULT_REGION = "us-east-1"


def retry_config() -> Config:
    # "adaptive" adds client-side rate limiting on top of "standard", which keeps a
    # large scale-up under ECS's RunTask rate instead of bouncing off ThrottlingException.
    retries: Any = {
        "mode": os.environ.get("AWS_RETRY_MODE", "adaptive"),
        "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "10")),
    }
    return Config(
        retries=retries,
        # Above the operator's 16 handler threads, so connections are reused, not discarded.
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="dask-aws",
    )


@dataclass
class Aws:
    """The clients one reconcile needs, for one region."""

    session: boto3.Session
    region: str
    endpoint_url: str | None = None  # the local AWS; None: AWS itself (or AWS_ENDPOINT_URL)
    config: Config = field(default_factory=retry_config)
    identity: str = DEFAULT_IDENTITY  # who makes the calls, in the words of the front end
    # Other regions' Aws, made once: their clients are reused like this one's.
    _regions: dict[str, Aws] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Secret values this identity wrote or read, by (ARN, version): see aws/tls_secret.py.
    secret_values: dict[tuple[str, str], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def in_region(self, region: str) -> Aws:
        """The same identity and settings in another region (itself for "" or its own)."""
        if not region or region == self.region:
            return self
        if region not in self._regions:
            self._regions[region] = replace(self, region=region)
        return self._regions[region]

    def client(self, service: str) -> Any:
        return self.session.client(  # type: ignore[call-overload]
            service, region_name=self.region, config=self.config, endpoint_url=self.endpoint_url
        )

    @cached_property
    def ecs(self) -> ECSClient:
        return self.client("ecs")  # type: ignore[no-any-return]

    @cached_property
    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    @cached_property
    def iam(self) -> IAMClient:
        return self.client("iam")  # type: ignore[no-any-return]

    @cached_property
    def logs(self) -> CloudWatchLogsClient:
        return self.client("logs")  # type: ignore[no-any-return]

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        return self.client("secretsmanager")  # type: ignore[no-any-return]

    @cached_property
    def sts(self) -> STSClient:
        return self.client("sts")  # type: ignore[no-any-return]

    @cached_property
    def account_id(self) -> str:
        return self.sts.get_caller_identity()["Account"]

    @cached_property
    def known_region(self) -> bool:
        """Is this a region ECS has in any partition? A typo (us-esat-1) would otherwise
        surface only as an unreachable endpoint, retried for ever."""
        return any(
            self.region in self.session.get_available_regions("ecs", partition)
            for partition in self.session.get_available_partitions()
        )

    @cached_property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region)


def connect(
    region: str | None = None,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    identity: str = DEFAULT_IDENTITY,
) -> Aws:
    session = session or boto3.Session()
    return Aws(
        session=session,
        region=region or session.region_name or DEFAULT_REGION,
        endpoint_url=endpoint_url,
        identity=identity,
    )
