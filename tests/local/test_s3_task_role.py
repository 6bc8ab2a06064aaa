"""The user journey with IAM enforced: Dask workers read S3 as the cluster's task role.

A managed policy allows the task role to read one bucket; `dd.read_parquet` on it computes
on the workers, and the same on another bucket fails with AccessDenied, in the Client.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import dask.config
import pytest

from dask_aws import FargateCluster
from dask_aws.aws.clients import Aws
from dask_aws.local import LocalAws
from tests.fixtures.leaks import tagged_resources
from tests.local.helpers import unique
from tests.python_api.helpers import SMALL, task_processes

dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("s3fs")

pytestmark = pytest.mark.slow


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def parquet(frame: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def enforce_iam(local: LocalAws) -> None:
    """From now on moto checks every request against the caller's IAM policies."""
    request = urllib.request.Request(
        f"{local.endpoint_url}/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)


@pytest.fixture
def enforcing_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAws, dict[str, Any]]]:
    """Its own local AWS (it turns IAM enforcement on): two buckets with a parquet file
    each, a policy that reads one of them, and an admin user in the environment."""
    with LocalAws(stop_timeout=2.0) as local:
        admin = boto3.Session(region_name=local.region, **_testing())
        iam = admin.client("iam", endpoint_url=local.endpoint_url)
        s3 = admin.client("s3", endpoint_url=local.endpoint_url)
        allowed, denied = unique("allowed"), unique("denied")
        frames = {
            allowed: pd.DataFrame({"x": range(10), "y": [f"a{i}" for i in range(10)]}),
            denied: pd.DataFrame({"x": range(5), "y": [f"b{i}" for i in range(5)]}),
        }
        for bucket, frame in frames.items():
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="data/part.0.parquet", Body=parquet(frame))
        read = iam.create_policy(
            PolicyName=unique("read-allowed"),
            PolicyDocument=document(
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{allowed}/*",
                }
            ),
        )["Policy"]["Arn"]
        iam.create_user(UserName="admin")
        everything = document({"Effect": "Allow", "Action": "*", "Resource": "*"})
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=everything)
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        enforce_iam(local)
        env = {
            **local.env(),
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        with dask.config.set({"dask_aws.checkip-url": local.checkip_url}):
            yield local, {"allowed": allowed, "denied": denied, "policy": read, "frames": frames}


def _testing() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def denied(exc: BaseException) -> bool:
    """S3's 403, as s3fs raises it: AccessDenied (a HeadObject 403 has no body: Forbidden)."""
    text = str(exc)
    return isinstance(exc, PermissionError) and ("Forbidden" in text or "Access Denied" in text)


def test_workers_read_s3_as_the_task_role(
    enforcing_aws: tuple[LocalAws, dict[str, Any]],
) -> None:
    local, setup = enforcing_aws
    aws = Aws(boto3.Session(), local.region, endpoint_url=local.endpoint_url)  # the admin
    allowed, other = (f"s3://{setup[b]}/data/" for b in ("allowed", "denied"))
    started = time.monotonic()
    cluster = FargateCluster(n_workers=1, quiet=True, task_role_policies=[setup["policy"]], **SMALL)
    uid = cluster.uid
    try:
        from distributed import Client

        assert cluster.aws_status is not None
        role_arn = cluster.aws_status.aws.task_role_arn
        assert role_arn is not None
        role = role_arn.rsplit("/", 1)[1]
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=30)

            # Local functions: pickled by value (the workers can't import `tests`).
            def caller() -> str:
                import boto3

                return str(boto3.client("sts").get_caller_identity()["Arn"])

            def plan_and_read(path: str) -> int:
                import dask.dataframe as dd

                return len(dd.read_parquet(path).compute(scheduler="sync"))

            (identity,) = client.run(caller).values()
            assert f":assumed-role/{role}/" in identity

            # The Client plans (lists the bucket, reads the footer) as the user; the workers
            # read the data as the task role, which may only s3:GetObject in `allowed`.
            got = dd.read_parquet(allowed).compute().sort_values("x").reset_index(drop=True)
            pd.testing.assert_frame_equal(got, setup["frames"][setup["allowed"]], check_dtype=False)

            frame = dd.read_parquet(other)  # planned by the user, who may read it
            assert len(frame.compute(scheduler="sync")) == 5  # in this process: the user reads
            with pytest.raises(PermissionError) as info:
                frame.compute()  # on the workers: the task role may not
            assert denied(info.value), repr(info.value)

            # Planned on a worker, read_parquet lists the bucket: that needs s3:ListBucket,
            # which the task role lacks even on `allowed`.
            with pytest.raises(PermissionError) as info:
                client.submit(plan_and_read, allowed, pure=False).result()
            assert denied(info.value), repr(info.value)
    finally:
        cluster.close()
    assert tagged_resources(aws, uid) == []
    assert task_processes(local, uid, aws) == []
    assert local.server_errors() == []
    print(f"read S3 as the task role in {time.monotonic() - started:.1f}s")
