"""Mutual TLS: a CA per cluster, key material only in the cluster's own secret."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from distributed import Client, Scheduler
from distributed.security import Security

from dask_aws import certs
from dask_aws.aws.found import Target
from dask_aws.aws.iam_roles import SECRETS_POLICY_NAME
from dask_aws.aws.tags import TLS_NOT_AFTER
from dask_aws.engine.delete import delete
from dask_aws.engine.reconcile import reconcile
from dask_aws.status import ConditionType
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import converge, target
from tests.fixtures.leaks import tagged_resources

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def _with_tls(tgt: Target, **tls: Any) -> Target:
    return Target(
        tgt.owner, tgt.spec.model_copy(update={"tls": tgt.spec.tls.model_copy(update=tls)})
    )


def test_certificates_reach_the_tasks_only_through_their_own_secret(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("tls", secrets={"TOKEN": "arn:aws:ssm:us-east-1:123456789012:parameter/token"})
    status = converge(aws, tgt).status
    assert status.scheduler_address and status.scheduler_address.startswith("tls://127.")
    assert status.dashboard_address and status.dashboard_address.startswith("https://127.")
    arn = status.aws.tls_secret_arn
    assert arn and status.tls and status.tls.not_after
    expires = datetime.datetime.fromisoformat(status.tls.not_after)
    assert 364 <= (expires - datetime.datetime.now(datetime.UTC)).days <= 365
    version = aws.secretsmanager.describe_secret(SecretId=arn)["VersionIdsToStages"]

    for key in ("scheduler_task_definition_arn", "worker_task_definition_arn"):
        definition = aws.ecs.describe_task_definition(taskDefinition=getattr(status.aws, key))
        text = json.dumps(definition, default=str)
        assert "-----BEGIN" not in text and "PRIVATE KEY" not in text
        container = definition["taskDefinition"]["containerDefinitions"][0]
        tls_refs = [s["valueFrom"] for s in container["secrets"] if s["name"] != "TOKEN"]
        # One version of one secret: new certificates mean a new revision.
        assert {r.rsplit(":", 3)[0] for r in tls_refs} == {arn}
        assert {r.rsplit(":", 1)[1] for r in tls_refs} == set(version)
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
        if key.startswith("scheduler"):
            assert container["command"][-2:] == ["--protocol", "tls"]
    assert "-----BEGIN" not in status.model_dump_json()

    role = status.aws.execution_role_arn
    assert role
    document = aws.iam.get_role_policy(
        RoleName=role.rsplit("/", 1)[1], PolicyName=SECRETS_POLICY_NAME
    )["PolicyDocument"]
    granted = {
        s["Action"]: sorted(s["Resource"]) for s in document["Statement"]
    }  # exactly the secrets the spec names and its own certificates
    assert granted == {
        "secretsmanager:GetSecretValue": [arn],
        "ssm:GetParameters": ["arn:aws:ssm:us-east-1:123456789012:parameter/token"],
    }

    assert delete(aws, tgt).done
    with pytest.raises(aws.secretsmanager.exceptions.ResourceNotFoundException):
        aws.secretsmanager.describe_secret(SecretId=arn)
    assert tagged_resources(aws, tgt.owner.uid) == []


def test_a_new_validity_issues_new_certificates_and_a_new_scheduler(
    local_aws_simulated: Any,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("renew")
    before = converge(aws, tgt).status
    after = converge(aws, _with_tls(tgt, validity_days=30)).status
    assert after.aws.tls_secret_arn == before.aws.tls_secret_arn  # same secret, new version
    assert after.tls and before.tls and after.tls.not_after < before.tls.not_after
    # Old and new certificates never mix: the scheduler task definition moved on, and so
    # did the scheduler (and its workers).
    assert after.aws.scheduler_task_definition_arn != before.aws.scheduler_task_definition_arn
    assert after.aws.scheduler_task_arn != before.aws.scheduler_task_arn
    assert delete(aws, tgt).done
    assert tagged_resources(aws, tgt.owner.uid) == []


def test_opting_out_of_tls_gives_tcp_and_removes_the_secret(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("opt-out")
    secure = converge(aws, tgt).status
    arn = secure.aws.tls_secret_arn
    plain = converge(aws, _with_tls(tgt, enabled=False), previous=secure).status
    assert plain.scheduler_address and plain.scheduler_address.startswith("tcp://127.")
    assert plain.aws.tls_secret_arn is None and plain.tls is None
    with pytest.raises(aws.secretsmanager.exceptions.ResourceNotFoundException):
        aws.secretsmanager.describe_secret(SecretId=arn)
    assert delete(aws, _with_tls(tgt, enabled=False)).done
    assert tagged_resources(aws, tgt.owner.uid) == []


@pytest.mark.parametrize(
    ("validity_days", "days_left", "warned"),
    [
        (365, 31, False),
        (365, 30, True),  # 30 days before expiry
        (30, 11, False),
        (30, 10, True),  # a third of a short validity
        (1, 0, True),  # expired
    ],
)
def test_expiry_is_announced_30_days_or_a_third_of_the_validity_before(
    validity_days: int, days_left: int, warned: bool
) -> None:
    expires = NOW + datetime.timedelta(days=days_left)
    warning = certs.expiry_warning(expires.strftime("%Y-%m-%dT%H:%M:%SZ"), validity_days, NOW)
    assert (warning is not None) == warned
    if warning:
        assert "spec.tls.validityDays" in warning


async def test_a_scheduler_accepts_only_its_own_clusters_clients() -> None:
    ours, theirs = certs.issue("ours", 1), certs.issue("theirs", 1)
    node = Security(  # type: ignore[no-untyped-call]
        tls_ca_file=ours.ca,
        tls_scheduler_cert=ours.node_cert,
        tls_scheduler_key=ours.node_key,
        require_encryption=True,
    )
    async with Scheduler(  # type: ignore[no-untyped-call]
        protocol="tls", host="127.0.0.1", security=node, dashboard_address=":0"
    ) as scheduler:
        async with Client(
            scheduler.address, security=ours.client_security(), asynchronous=True, timeout=10
        ) as client:
            assert client.scheduler_info()["address"] == scheduler.address
        with pytest.raises(OSError):
            await Client(
                scheduler.address, security=theirs.client_security(), asynchronous=True, timeout=5
            )


def test_certificates_close_to_expiry_are_announced_once(local_aws_simulated: Any) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = target("expiring")
    ready = converge(aws, tgt).status
    assert ready.tls and ready.tls.not_after
    # As if a year had passed: the certificates expire in 3 days.
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    arn = ready.aws.tls_secret_arn
    aws.secretsmanager.tag_resource(SecretId=arn, Tags=[{"Key": TLS_NOT_AFTER, "Value": soon}])
    warned = reconcile(aws, tgt, previous=ready)
    condition = warned.status.condition(ConditionType.READY)
    assert warned.ready and condition and condition.reason == "CertificateExpiring"
    assert soon in condition.message and warned.status.tls and warned.status.tls.not_after == soon
    (event,) = [e for e in warned.events if e.reason == "CertificateExpiring"]
    assert event.type == "Warning" and soon in event.message
    again = reconcile(aws, tgt, previous=warned.status)
    assert "CertificateExpiring" not in [e.reason for e in again.events]  # once, not each step
    assert delete(aws, tgt).done
