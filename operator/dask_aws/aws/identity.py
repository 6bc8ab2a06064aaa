"""Another AWS identity: an IAM role (possibly in another account) the operator assumes.

A namespace's DaskAwsPolicy may name a role (`roleArn`, optional `externalId`, `region`);
everything the operator does for that namespace then runs as that role, through a session
whose credentials come from sts:AssumeRole and refresh themselves: botocore's
RefreshableCredentials calls AssumeRole again from 15 minutes before they expire (an
"advisory" refresh, whose failure is logged and the current credentials kept) and must
succeed from 10 minutes before (a "mandatory" refresh, whose failure reaches the API call
that needed the credentials).

The first AssumeRole happens when the session is made, not at its first use: a role the
operator may not assume (no trust, wrong external id, no such role) is reported there, as
PermanentError "AssumeRoleFailed" with AWS's own text, before any work for the namespace
starts, rather than out of whichever API call of a reconcile happened to come first. Only
sessions that worked are cached (`connect_as`), so a fixed trust policy is picked up at the
next attempt. A refusal at a later refresh (trust policy changed meanwhile) surfaces as the
same PermanentError from the call that needed fresh credentials.

STS is called with the base session's credentials and the same endpoint rules as every
other client: an explicit endpoint_url, otherwise AWS_ENDPOINT_URL (the local AWS) or AWS.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from dask_aws.aws.clients import DEFAULT_REGION, Aws, retry_config
from dask_aws.errors import (
    ACCESS_DENIED,
    REFUSED,
    AwsFailure,
    DaskAwsError,
    PermanentError,
    TransientError,
    error_code,
)

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

ASSUME_ROLE_FAILED = "AssumeRoleFailed"
DEFAULT_DURATION = 3600  # AssumeRole's own default; at least 900
DEFAULT_SESSION_NAME = "dask-aws-operator"
METHOD = "dask-aws-assume-role"
# STS refusing the request itself: another try cannot help, a change of the role's trust
# policy or of the DaskAwsPolicy can. Throttling and 5xx stay transient.
REFUSALS = ACCESS_DENIED | REFUSED | {"RegionDisabledException", "PackedPolicyTooLarge"}

TimeFetcher = Callable[[], datetime.datetime]
Fetch = Callable[[], dict[str, Any]]


def assume_role_failed(exc: ClientError | BotoCoreError, role_arn: str) -> DaskAwsError:
    """STS's answer to AssumeRole as the engine reports it, AWS's text included."""
    if isinstance(exc, BotoCoreError):
        return TransientError(
            ASSUME_ROLE_FAILED, f"sts:AssumeRole of {role_arn} could not reach STS: {exc}"
        )
    failure = AwsFailure(
        operation="AssumeRole",
        code=error_code(exc),
        text=str(exc.response.get("Error", {}).get("Message", exc)),
    )
    kind = PermanentError if failure.code in REFUSALS else TransientError
    hint = (
        " (check the role's trust policy allows the operator's identity, and the externalId)"
        if failure.code in ACCESS_DENIED
        else ""
    )
    return kind(
        ASSUME_ROLE_FAILED,
        f"the operator could not assume {role_arn}{hint}: {failure.code}: {failure.text}",
        failure,
    )


def assume_role_fetcher(
    sts: STSClient,
    role_arn: str,
    external_id: str | None,
    session_name: str,
    duration_seconds: int = DEFAULT_DURATION,
) -> Fetch:
    """A function that calls AssumeRole and returns the credentials in the form
    RefreshableCredentials reads (access_key, secret_key, token, expiry_time)."""

    def fetch() -> dict[str, Any]:
        request: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration_seconds,
        }
        if external_id is not None:
            request["ExternalId"] = external_id
        try:
            response = sts.assume_role(**request)
        except (ClientError, BotoCoreError) as exc:
            raise assume_role_failed(exc, role_arn) from exc
        credentials = response["Credentials"]
        expiration = credentials["Expiration"]
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=datetime.UTC)
        # arn:aws:sts::<account>:assumed-role/<role>/<session>
        account = response.get("AssumedRoleUser", {}).get("Arn", "").split(":")[4:5]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat(),
            "account_id": account[0] if account else None,
        }

    return fetch


def refreshable(fetch: Fetch, time_fetcher: TimeFetcher | None = None) -> RefreshableCredentials:
    """Credentials from `fetch()` now, fetched again by botocore before they expire."""
    metadata = fetch()
    extra: dict[str, Any] = {} if time_fetcher is None else {"time_fetcher": time_fetcher}
    return RefreshableCredentials(
        access_key=metadata["access_key"],
        secret_key=metadata["secret_key"],
        token=metadata["token"],
        expiry_time=datetime.datetime.fromisoformat(metadata["expiry_time"]),
        refresh_using=fetch,
        method=METHOD,
        account_id=metadata.get("account_id"),
        **extra,
    )


class _Given(CredentialProvider):
    """A credential chain of one link: these credentials."""

    METHOD = METHOD
    CANONICAL_NAME = "DaskAwsAssumeRole"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def session_with(credentials: RefreshableCredentials, region: str | None) -> boto3.Session:
    """A boto3 session whose only credentials are `credentials`."""
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
    return boto3.Session(botocore_session=core, region_name=region)


def assumed(
    base: boto3.Session,
    role_arn: str,
    external_id: str | None,
    session_name: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    duration_seconds: int = DEFAULT_DURATION,
    time_fetcher: TimeFetcher | None = None,
) -> boto3.Session:
    """A session acting as `role_arn`, assumed with `base`'s credentials; its credentials
    refresh themselves. Raises PermanentError("AssumeRoleFailed") now when STS refuses
    (TransientError when STS is throttling or unreachable). `endpoint_url` None: the
    environment's (AWS_ENDPOINT_URL) or AWS's."""
    region = region or base.region_name or DEFAULT_REGION
    sts: STSClient = base.client(
        "sts", region_name=region, endpoint_url=endpoint_url, config=retry_config()
    )
    fetch = assume_role_fetcher(sts, role_arn, external_id, session_name, duration_seconds)
    return session_with(refreshable(fetch, time_fetcher), region)


# -- one Aws per assumed identity ----------------------------------------------------------------
CacheKey = tuple[str, str | None, str, str | None]  # role ARN, external id, region, endpoint
_cache: dict[CacheKey, Aws] = {}
_cache_lock = threading.Lock()
_key_locks: dict[CacheKey, threading.Lock] = {}


def connect_as(
    base: boto3.Session,
    role_arn: str,
    external_id: str | None = None,
    region: str | None = None,
    *,
    endpoint_url: str | None = None,
    session_name: str = DEFAULT_SESSION_NAME,
    instrument: Callable[[boto3.Session], boto3.Session] | None = None,
) -> Aws:
    """The clients (`Aws`) of `role_arn` in `region` (default: `base`'s region, then
    us-east-1), made once per (role, external id, region, endpoint) and reused: the role is
    assumed once, not per reconcile, and its credentials refresh themselves. A refusal is
    raised (PermanentError "AssumeRoleFailed") and not cached. `instrument` (e.g. the
    operator's metrics hook) is applied to the new session. The session name is the first
    caller's; namespaces naming the same role share its session."""
    region = region or base.region_name or DEFAULT_REGION
    key: CacheKey = (role_arn, external_id, region, endpoint_url)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            return found
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:  # one AssumeRole per key at a time; other keys are not held up
        with _cache_lock:
            found = _cache.get(key)
        if found is not None:
            return found
        session = assumed(
            base, role_arn, external_id, session_name, region=region, endpoint_url=endpoint_url
        )
        if instrument is not None:
            session = instrument(session)
        aws = Aws(
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            identity=f"the IAM role {role_arn} (assumed by the operator)",
        )
        with _cache_lock:
            _cache[key] = aws
        return aws


def forget(role_arn: str | None = None) -> None:
    """Drop cached identities (of `role_arn`, or all): the next `connect_as` assumes again."""
    with _cache_lock:
        for key in [k for k in _cache if role_arn is None or k[0] == role_arn]:
            del _cache[key]
