"""aws/identity.py: sessions of an assumed role, refreshed before expiry, refusals reported."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from dask_aws.aws import identity
from dask_aws.aws.identity import ASSUME_ROLE_FAILED, assumed, connect_as, refreshable
from dask_aws.errors import PermanentError, TransientError
from dask_aws.local import LocalAws
from tests.fixtures.aws_clients import session_for
from tests.local.helpers import unique

B = "222222222222"


class Clock:
    """A time botocore's credentials read instead of the wall clock."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.offset

    def advance_to(self, moment: datetime.datetime, before: datetime.timedelta) -> None:
        """Set the clock to `before` ahead of `moment`."""
        self.offset = (moment - before) - datetime.datetime.now(datetime.UTC)


def counting_assume_role(session: boto3.Session) -> list[str]:
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if model.name == "AssumeRole":
            calls.append(model.name)

    session.events.register("before-call", record)
    return calls


@pytest.fixture(autouse=True)
def empty_cache() -> Any:
    identity.forget()
    yield
    identity.forget()


def test_assumed_session_acts_in_the_roles_account(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    role = unique("tenant")
    arn = local.create_account_role(B, role, external_id="ext-7")
    session = assumed(session_for(), arn, "ext-7", "ns-a", endpoint_url=local.endpoint_url)
    who = session.client("sts", endpoint_url=local.endpoint_url).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{B}:assumed-role/{role}/ns-a"
    assert session.region_name == "us-east-1"


def test_endpoint_comes_from_aws_endpoint_url(
    local_aws_simulated: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
    session = assumed(session_for(), arn, None, "ns-env")
    assert session.client("sts").get_caller_identity()["Account"] == B


def test_refusal_is_permanent_and_raised_at_creation(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant"), external_id="right")
    for external_id in ("wrong", None):
        with pytest.raises(PermanentError) as caught:
            assumed(session_for(), arn, external_id, "ns-b", endpoint_url=local.endpoint_url)
        error = caught.value
        assert error.reason == ASSUME_ROLE_FAILED
        assert error.aws is not None and error.aws.code == "AccessDenied"
        assert f"is not authorized to perform: sts:AssumeRole on resource: {arn}" in error.message
        assert arn in error.message and "externalId" in error.message


def test_throttling_is_transient(
    local_aws_simulated: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore: one retry
    local.fail_next("sts:AssumeRole", count=2, kind="throttle")
    try:
        with pytest.raises(TransientError) as caught:
            assumed(session_for(), arn, None, "ns-c", endpoint_url=local.endpoint_url)
    finally:
        local.clear_faults()
    assert caught.value.reason == ASSUME_ROLE_FAILED


def test_credentials_refresh_before_they_expire(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant"))
    base = session_for()
    calls = counting_assume_role(base)
    clock = Clock()
    session = assumed(base, arn, None, "ns-d", endpoint_url=local.endpoint_url, time_fetcher=clock)
    credentials: Any = session.get_credentials()
    first = credentials.get_frozen_credentials()
    assert calls == ["AssumeRole"]
    expiry = expiry_of(credentials)
    # An hour left: nothing to do.
    assert credentials.get_frozen_credentials() == first and len(calls) == 1
    # 14 minutes left (botocore's advisory window starts at 15): assumed again.
    clock.advance_to(expiry, datetime.timedelta(minutes=14))
    second = credentials.get_frozen_credentials()
    assert len(calls) == 2 and second.access_key != first.access_key
    # The new credentials work, and are still the role's, in its account.
    sts = session.client("sts", endpoint_url=local.endpoint_url)
    clock.offset = datetime.timedelta()
    assert sts.get_caller_identity()["Account"] == B


def expiry_of(credentials: Any) -> datetime.datetime:
    expiry: datetime.datetime = credentials._expiry_time  # botocore keeps it private
    return expiry


def fake_fetch(outcomes: list[Any], clock: Clock) -> Callable[[], dict[str, Any]]:
    """A fetcher that returns (or raises) `outcomes` in turn; each set of credentials
    expires an hour after `clock`'s now."""
    serial = itertools.count()
    pending = list(outcomes)

    def fetch() -> dict[str, Any]:
        outcome = pending.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        expiry = clock() + datetime.timedelta(hours=1)
        n = next(serial)
        return {
            "access_key": f"ASIA{n}",
            "secret_key": f"secret-{n}",
            "token": f"token-{n}",
            "expiry_time": expiry.isoformat(),
        }

    return fetch


def test_advisory_failure_keeps_the_credentials_mandatory_failure_raises() -> None:
    refused = PermanentError(ASSUME_ROLE_FAILED, "refused")
    clock = Clock()
    credentials = refreshable(fake_fetch([None, refused, refused], clock), time_fetcher=clock)
    assert credentials.get_frozen_credentials().access_key == "ASIA0"
    expiry = expiry_of(credentials)
    clock.advance_to(expiry, datetime.timedelta(minutes=12))  # advisory: logged, kept
    assert credentials.get_frozen_credentials().access_key == "ASIA0"
    clock.advance_to(expiry, datetime.timedelta(minutes=5))  # mandatory: the call fails
    session = identity.session_with(credentials, "us-east-1")
    assert session.get_credentials() is credentials
    with pytest.raises(PermanentError, match="refused"):
        session.client("sts", endpoint_url="http://127.0.0.1:9").get_caller_identity()


def test_refresh_replaces_expired_credentials() -> None:
    clock = Clock()
    credentials = refreshable(fake_fetch([None, None], clock), time_fetcher=clock)
    clock.advance_to(expiry_of(credentials), datetime.timedelta(minutes=-1))  # expired
    assert credentials.get_frozen_credentials().access_key == "ASIA1"
    assert not credentials.refresh_needed()


def test_connect_as_caches_per_role_external_id_and_region(
    local_aws_simulated: LocalAws,
) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant"), external_id="x1")
    base = session_for()
    calls = counting_assume_role(base)
    url = local.endpoint_url
    aws = connect_as(base, arn, "x1", "us-east-1", endpoint_url=url)
    assert connect_as(base, arn, "x1", "us-east-1", endpoint_url=url) is aws
    assert connect_as(base, arn, "x1", None, endpoint_url=url) is aws  # base's region
    assert len(calls) == 1
    assert aws.account_id == B and arn in aws.identity
    assert aws.ecs.list_clusters() is not None  # clients made from the assumed session
    west = connect_as(base, arn, "x1", "eu-west-1", endpoint_url=url)
    assert west is not aws and west.region == "eu-west-1" and len(calls) == 2
    # A refusal is raised every time, never cached.
    for _ in range(2):
        with pytest.raises(PermanentError):
            connect_as(base, arn, "x2", "us-east-1", endpoint_url=url)
    assert len(calls) == 4
    identity.forget(arn)
    assert connect_as(base, arn, "x1", "us-east-1", endpoint_url=url) is not aws


def test_instrument_hook_sees_the_assumed_session(local_aws_simulated: LocalAws) -> None:
    local = local_aws_simulated
    arn = local.create_account_role(B, unique("tenant"))
    seen: list[str] = []

    def instrument(session: boto3.Session) -> boto3.Session:
        session.events.register("before-call", lambda model, **_: seen.append(model.name))
        return session

    aws = connect_as(session_for(), arn, endpoint_url=local.endpoint_url, instrument=instrument)
    assert aws.account_id == B
    assert seen == ["GetCallerIdentity"]
