"""Mutual TLS end to end: the example applied on the real API server, the local AWS, real
Dask. Only holders of the connection Secret connect; no key material leaks anywhere."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from distributed import Client
from distributed.comm.core import connect

from dask_aws import certs
from dask_aws.aws.iam_roles import SECRETS_POLICY_NAME
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import connection_secret, operator_client
from tests.fixtures.leaks import tagged_resources
from tests.operator.helpers import get, ready

pytestmark = [pytest.mark.slow, pytest.mark.k8s]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "daskawscluster.yaml"
PEM = "-----BEGIN"


def _refused(attempt: Callable[[], Any]) -> float:
    """Seconds until `attempt` fails; it must fail."""
    started = time.monotonic()
    with pytest.raises((OSError, ssl.SSLError, TimeoutError)):
        attempt()
    return time.monotonic() - started


def _tls_without_certificate(address: str, ca: str) -> None:
    """A TLS client that trusts the cluster's CA but presents no certificate of its own."""
    host, port = urlsplit(address).hostname, urlsplit(address).port
    context = ssl.create_default_context(cadata=ca)
    context.check_hostname = False
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"\x00" * 8)
        if not tls.recv(1):  # TLS 1.3: the server's refusal arrives with the first read
            raise ConnectionResetError("closed without a certificate")


async def _plain_tcp(address: str) -> None:
    comm = await connect(address.replace("tls://", "tcp://"), timeout=10)
    try:
        await comm.write({"op": "identity"})
        await comm.read()
    finally:
        comm.abort()


def test_only_holders_of_the_connection_secret_connect(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    operator = start_operator()
    k8s.kubectl("apply", "-n", ns, "-f", str(EXAMPLE))
    obj = ready(k8s, ns, "demo")
    status = obj["status"]
    address = status["schedulerAddress"]
    assert address.startswith("tls://127.")
    assert status["dashboardAddress"].startswith("https://127.")
    assert status["tls"]["notAfter"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = connection_secret(k8s, ns, "demo")
    assert data["scheduler-address"] == address
    assert {"ca.crt", "tls.crt", "tls.key"} <= set(data)

    with operator_client(k8s, ns, "demo", timeout=30) as client:
        assert client.submit(sum, range(10)).result() == 45

    # The dashboard speaks HTTPS with the cluster's certificate.
    https = ssl.create_default_context(cadata=data["ca.crt"])
    https.check_hostname = False
    health = status["dashboardAddress"].replace("/status", "/health")
    with urllib.request.urlopen(health, context=https, timeout=10) as reply:
        assert reply.read() == b"ok"

    another = certs.issue("another-cluster", 1).client_security()
    timings = {
        "no client certificate": _refused(
            lambda: _tls_without_certificate(address, data["ca.crt"])
        ),
        "plain tcp://": _refused(lambda: asyncio.run(_plain_tcp(address))),
        "another cluster's certificate": _refused(
            lambda: Client(address, security=another, timeout=10).close()
        ),
    }
    print("refused after: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))

    aws, _ = aws_for(local_aws.endpoint_url)
    secret_arn = status["aws"]["tlsSecretArn"]
    role = status["aws"]["executionRoleArn"].rsplit("/", 1)[1]
    policy = aws.iam.get_role_policy(RoleName=role, PolicyName=SECRETS_POLICY_NAME)
    resources = [r for s in policy["PolicyDocument"]["Statement"] for r in s["Resource"]]
    assert resources == [secret_arn]  # the execution role reads its own secret, nothing else
    definitions = [
        aws.ecs.describe_task_definition(taskDefinition=status["aws"][key])["taskDefinition"]
        for key in ("schedulerTaskDefinitionArn", "workerTaskDefinitionArn")
    ]
    for definition in definitions:
        secrets = definition["containerDefinitions"][0]["secrets"]
        assert {s["valueFrom"].rsplit(":", 3)[0] for s in secrets} == {secret_arn}
    events = k8s.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    for where, text in (
        ("task definitions", json.dumps(definitions, default=str)),
        ("status", json.dumps(obj)),
        ("Events", events),
        ("the operator's log", operator.log.read_text(errors="replace")),
    ):
        assert PEM not in text and "PRIVATE KEY" not in text, where

    k8s.kubectl("delete", "dac/demo", "-n", ns, "--timeout=180s", timeout=200)
    assert get(k8s, ns, "demo") is None
    with pytest.raises(aws.secretsmanager.exceptions.ResourceNotFoundException):
        aws.secretsmanager.describe_secret(SecretId=secret_arn)
    assert tagged_resources(aws, obj["metadata"]["uid"]) == []
