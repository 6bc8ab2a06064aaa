"""An HTTP 5xx from the local AWS is its bug: recorded, and a test that met one fails
(tests/fixtures/local_aws.py); faults injected on purpose are not recorded. Also requests
moto used to crash on."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dask_aws.local import LocalAws
from dask_aws.local.context import LocalContext
from dask_aws.local.middleware import LocalMiddleware, remember_exception
from tests.fixtures.polling import wait_for
from tests.local.helpers import Env, describe, make_env, register, unique

CONTAINER = [{"name": "main", "image": "python", "command": ["sleep", "60"]}]
SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{}/aws4_request, Signature=x"


def json_request(action: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_AUTHORIZATION": SCOPE.format("ecs"),
        "HTTP_X_AMZ_TARGET": f"AmazonEC2ContainerServiceV20141113.{action}",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
    }


def query_request(action: str) -> dict[str, Any]:
    body = f"Action={action}&Version=2016-11-15".encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_AUTHORIZATION": SCOPE.format("ec2"),
        "CONTENT_LENGTH": str(len(body)),
        # A socket-like stream, read once: the middleware must keep the body to name it.
        "wsgi.input": io.BufferedReader(io.BytesIO(body)),
    }


class App:
    """moto's app as it fails: Flask reports the crash, then answers 500."""

    def __init__(self, context: LocalContext, status: int = 500, crash: bool = True) -> None:
        self.receiver = remember_exception(context)
        self.status = status
        self.crash = crash
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        environ["wsgi.input"].read()
        if self.crash:
            try:
                raise KeyError("securityGroups")  # what moto once raised in RunTask
            except KeyError as exc:
                self.receiver(None, exception=exc)
        start_response(f"{self.status} WHATEVER", [("Content-Type", "text/html")])
        return [b"<p>Internal Server Error</p>"]


def call(app: LocalMiddleware, environ: dict[str, Any]) -> int:
    status: list[int] = []
    b"".join(app(environ, lambda line, headers, exc=None: status.append(int(line[:3]))))
    return status[0]


def middleware(moto: Any) -> tuple[LocalMiddleware, LocalContext]:
    context = LocalContext("us-east-1", simulated=True)
    return LocalMiddleware(moto, context, control=moto), context


def test_a_crash_of_moto_is_recorded_with_its_operation_and_traceback() -> None:
    app, context = middleware(None)
    app.app = App(context)
    assert call(app, json_request("RunTask")) == 500
    (error,) = context.server_errors.describe()["errors"]
    assert error["operation"] == "ecs:RunTask" and error["status"] == 500
    assert "KeyError: 'securityGroups'" in error["detail"]
    app.app = App(context, crash=False)
    assert call(app, query_request("DescribeSubnets")) == 500
    assert context.server_errors.describe()["errors"][-1]["operation"] == "ec2:DescribeSubnets"
    assert context.server_errors.describe(clear=True)["count"] == 2
    assert context.server_errors.describe()["count"] == 0


def test_an_exception_out_of_moto_is_recorded_and_4xx_and_injected_faults_are_not() -> None:
    def raising(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("boom")

    app, context = middleware(raising)
    with pytest.raises(RuntimeError):
        call(app, json_request("DescribeTasks"))
    assert "RuntimeError: boom" in context.server_errors.describe(clear=True)["errors"][0]["detail"]
    app.app = refusing = App(context, status=400, crash=False)
    assert call(app, json_request("RunTask")) == 400
    context.faults.fail_next("ecs:RunTask", kind="5xx")
    assert call(app, json_request("RunTask")) == 500
    assert refusing.calls == 1  # the injected fault never reached moto
    assert context.server_errors.describe()["count"] == 0


def _eni_details(env: Env, arn: str) -> dict[str, str]:
    (task,) = describe(env, [arn])
    return {d["name"]: d["value"] for d in task["attachments"][0]["details"]}


def test_run_task_in_a_vpc_without_dns_hostnames(local_aws_simulated: LocalAws) -> None:
    # moto answered HTTP 500 (the task ENI had no private DNS name); AWS accepts it, with
    # or without security groups (then the VPC's default group).
    env = make_env(local_aws_simulated)
    vpc = env.ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = env.ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = env.ec2.create_security_group(GroupName=unique("sg"), Description="t", VpcId=vpc)
    definition = register(env, CONTAINER)
    for awsvpc in (
        {"subnets": [subnet], "securityGroups": [group["GroupId"]]},
        {"subnets": [subnet]},
    ):
        response = env.ecs.run_task(
            cluster=env.cluster,
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": awsvpc},
        )
        assert len(response["tasks"]) == 1 and not response.get("failures")
        (task,) = response["tasks"]
        # RunTask's reply names the subnet only (PRECREATED); the DNS name comes with ATTACHED.
        assert task["attachments"][0]["details"] == [{"name": "subnetId", "value": subnet}]
        attached = wait_for(
            lambda arn=task["taskArn"]: _eni_details(env, arn).get("privateDnsName"),
            10,
            "the task's interface attached",
            interval=0.05,
        )
        assert attached.startswith("ip-")
    assert local_aws_simulated.server_errors() == []


def test_an_ec2_run_task_without_container_instances_is_refused(
    local_aws_simulated: LocalAws,
) -> None:
    # moto raised a bare Exception (HTTP 500); AWS refuses it as an invalid parameter.
    env = make_env(local_aws_simulated)
    definition = register(env, CONTAINER, requiresCompatibilities=["EC2"], networkMode="bridge")
    with pytest.raises(ClientError) as exc:
        env.ecs.run_task(cluster=env.cluster, taskDefinition=definition, launchType="EC2")
    error = exc.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == "No Container Instances were found in your cluster."
