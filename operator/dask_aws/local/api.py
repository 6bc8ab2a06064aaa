"""`LocalAws`: the local AWS as a Python object (a child process you start and stop).

The server runs in its own process so that its moto patches and global state never meet a
`mock_aws` in the calling process, and so that the caller's GIL is not shared with the
endpoint. Fault injection and introspection go over the `/_local/` HTTP routes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from dask_aws.local.addresses import random_base
from dask_aws.local.cli import CHECKIP_PATH, env_for
from dask_aws.local.latency import LatencyProfile
from dask_aws.local.quotas import DEFAULT_VCPU

FaultKind = Literal["throttle", "5xx"]

# The account `testing`/`testing` credentials (and anything moto cannot place) land in.
DEFAULT_ACCOUNT = "123456789012"

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalAwsError(RuntimeError):
    pass


class LocalAws:
    """An AWS endpoint on 127.0.0.1 whose ECS tasks run as local processes.

    >>> with LocalAws() as aws:
    ...     ecs = boto3.client("ecs", endpoint_url=aws.endpoint_url, **aws.client_kwargs())
    """

    def __init__(
        self,
        port: int = 0,
        simulated: bool = False,
        stop_timeout: float = 5.0,
        region: str = "us-east-1",
        *,
        startup_timeout: float = 60.0,
        address_quarantine: float = 30.0,
        log_path: str | os.PathLike[str] | None = None,
        address_base: str | None = None,
        fargate_vcpu_quota: float = DEFAULT_VCPU,
        fargate_spot_vcpu_quota: float = DEFAULT_VCPU,
        latency: str = "none",
        latency_seed: int = 0,
    ) -> None:
        # A random 127.N.0.0 block per server: concurrent test sessions on one machine
        # rarely hand out the same task addresses (and the server skips taken ones).
        self.address_base = address_base or random_base()
        self.requested_port = port
        self.simulated = simulated
        self.stop_timeout = stop_timeout
        self.region = region
        self.startup_timeout = startup_timeout
        self.address_quarantine = address_quarantine
        # The account's Fargate vCPU quotas per region (on-demand, Spot): local/quotas.py.
        self.fargate_vcpu_quota = fargate_vcpu_quota
        self.fargate_spot_vcpu_quota = fargate_spot_vcpu_quota
        # How long each task stays PROVISIONING and PENDING: "none" (RUNNING at once),
        # "aws" (Fargate's durations, drawn per task) or "aws:SCALE"; local/latency.py.
        self.latency = LatencyProfile.parse(latency, latency_seed)
        self.port = 0
        self.pid: int | None = None
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        # A log this object named itself goes with stop(); one the caller named is kept.
        self._own_log = log_path is None
        self._process: subprocess.Popen[bytes] | None = None
        self._known_groups: set[int] = set()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if not self.port:
            raise LocalAwsError("the local AWS is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalAws:
        if self._process is not None:
            raise LocalAwsError("already started")
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="dask-aws-local-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        read_fd, write_fd = os.pipe()
        command = [
            sys.executable,
            "-m",
            "dask_aws.local",
            "--port",
            str(self.requested_port),
            "--region",
            self.region,
            "--stop-timeout",
            str(self.stop_timeout),
            "--address-quarantine",
            str(self.address_quarantine),
            "--address-base",
            self.address_base,
            "--ready-fd",
            str(write_fd),
            "--parent-pid",
            str(os.getpid()),
            "--fargate-vcpu-quota",
            str(self.fargate_vcpu_quota),
            "--fargate-spot-vcpu-quota",
            str(self.fargate_spot_vcpu_quota),
            "--latency",
            str(self.latency),
            "--latency-seed",
            str(self.latency.seed),
        ]
        if self.simulated:
            command.append("--simulated")
        env = dict(os.environ)
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "ab") as log:
            try:
                self._process = subprocess.Popen(
                    command,
                    pass_fds=(write_fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                )
            finally:
                os.close(write_fd)
        try:
            ready = self._read_ready(read_fd)
        except BaseException:
            self._terminate_server(grace=2.0)
            raise
        finally:
            os.close(read_fd)
        self.port = int(ready["port"])
        self.pid = int(ready["pid"])
        atexit.register(self._atexit_guard)
        return self

    def _read_ready(self, fd: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.startup_timeout
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LocalAwsError(f"local AWS did not start in time; see {self.log_path}")
            readable, _, _ = select.select([fd], [], [], min(left, 0.5))
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
            elif self._process is not None and self._process.poll() is not None:
                break
        if b"\n" not in data:
            raise LocalAwsError(
                f"local AWS failed to start; see {self.log_path}:\n{self.log_tail()}"
            )
        result: dict[str, Any] = json.loads(data.split(b"\n", 1)[0])
        return result

    def stop(self) -> None:
        """Stop the server: it stops every task process (SIGTERM, then SIGKILL) and exits."""
        if self._process is None:
            return
        try:
            if self.running:
                with contextlib.suppress(LocalAwsError):
                    self._known_groups.update(p["pgid"] for p in self.running_processes())
            self._terminate_server(grace=self.stop_timeout + 20.0)
        finally:
            for pgid in self._known_groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
            self._process = None
            atexit.unregister(self._atexit_guard)
            if self._own_log and self.log_path is not None:
                # Hundreds of them gathered in /tmp after a day of test runs.
                self.log_path.unlink(missing_ok=True)
                self.log_path = None

    def _terminate_server(self, grace: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _atexit_guard(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- configuration for clients -------------------------------------------------------------
    @property
    def checkip_url(self) -> str:
        """This endpoint's stand-in for https://checkip.amazonaws.com (the caller's address)."""
        return self.endpoint_url + CHECKIP_PATH

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and the CLI at this endpoint, and
        FargateCluster's public-address lookup (dask_aws.checkip-url) at its checkip."""
        return env_for(self.endpoint_url, self.region)

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for `boto3.client(...)`."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }

    # -- other accounts --------------------------------------------------------------------------
    def account_credentials(self, account_id: str) -> dict[str, str]:
        """{accountId, userArn, accessKeyId, secretAccessKey}: an administrator of account
        `account_id` (made on first use, the same key after). moto files a request under the
        account that owns its access key, so calls signed with it act in that account; the
        default credentials (testing/testing) act in DEFAULT_ACCOUNT."""
        result: dict[str, str] = self._call(
            "POST", "accounts/credentials", {"accountId": account_id}
        )
        return result

    def account_env(self, account_id: str) -> dict[str, str]:
        """Like `env()`, with the credentials of an administrator of `account_id`."""
        keys = self.account_credentials(account_id)
        return {
            **self.env(),
            "AWS_ACCESS_KEY_ID": keys["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["secretAccessKey"],
        }

    def account_client_kwargs(self, account_id: str) -> dict[str, str]:
        """Like `client_kwargs()`, with the credentials of an administrator of `account_id`."""
        keys = self.account_credentials(account_id)
        return {
            **self.client_kwargs(),
            "aws_access_key_id": keys["accessKeyId"],
            "aws_secret_access_key": keys["secretAccessKey"],
        }

    def create_account_role(
        self,
        account_id: str,
        role_name: str,
        trusted_account: str = DEFAULT_ACCOUNT,
        external_id: str | None = None,
        policy: dict[str, Any] | None = None,
    ) -> str:
        """Create role `role_name` in `account_id` that `trusted_account` may assume (with
        `external_id` when given, as an sts:ExternalId condition); its ARN. `policy`, an
        inline permissions policy, defaults to everything. The local STS enforces the trust
        policy across accounts (local/credentials.py)."""
        import boto3  # only here: the server side never needs a client

        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{trusted_account}:root"},
            "Action": "sts:AssumeRole",
        }
        if external_id is not None:
            statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
        trust = {"Version": "2012-10-17", "Statement": [statement]}
        everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        permissions = policy or {"Version": "2012-10-17", "Statement": [everything]}
        keys = self.account_credentials(account_id)
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=keys["accessKeyId"],
            aws_secret_access_key=keys["secretAccessKey"],
        )
        arn = str(
            iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
                "Arn"
            ]
        )
        iam.put_role_policy(
            RoleName=role_name, PolicyName="permissions", PolicyDocument=json.dumps(permissions)
        )
        return arn

    # -- control routes ------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}/_local/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _NO_PROXY.open(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise LocalAwsError(f"{method} /_local/{path}: {exc.code} {detail}") from exc
        except OSError as exc:
            raise LocalAwsError(f"{method} /_local/{path}: {exc}") from exc

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def running_processes(self) -> list[dict[str, Any]]:
        """[{taskArn, container, pid, pgid, ip, argv}] of every container process alive."""
        result: list[dict[str, Any]] = self._call("GET", "processes")["processes"]
        self._known_groups.update(p["pgid"] for p in result)
        return result

    def tasks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "tasks")["tasks"]
        return result

    def kill_task(self, task_arn: str, spot: bool = False) -> None:
        """Crash the task's essential container (exit 137) or interrupt it as Spot."""
        self._call("POST", "tasks/kill", {"taskArn": task_arn, "spot": spot})

    def fail_next(self, operation: str, count: int = 1, kind: FaultKind = "throttle") -> None:
        """Make the next `count` calls of `operation` ("ecs:RunTask") fail."""
        self._call(
            "POST", "faults/fail-next", {"operation": operation, "count": count, "kind": kind}
        )

    def capacity_failures(self, count: int, capacity_provider: str | None = "FARGATE_SPOT") -> None:
        """The next `count` tasks RunTask places on `capacity_provider` (None: any) fail."""
        self._call(
            "POST", "faults/capacity", {"count": count, "capacityProvider": capacity_provider}
        )

    def set_spot_capacity(self, available: bool) -> None:
        """Whether Fargate Spot has capacity: False makes every task RunTask puts on
        FARGATE_SPOT a `failures` entry (AWS's reason for missing capacity) until set back;
        FARGATE (on-demand) still starts. `clear_faults` sets it back too."""
        self._call("POST", "faults/spot-capacity", {"available": bool(available)})

    def add_container_instances(
        self,
        cluster: str,
        count: int = 1,
        cpu: int = 4096,
        memory: int = 16384,
        gpus: int = 0,
        architecture: str = "x86_64",
    ) -> list[str]:
        """Register `count` container instances of this size with `cluster` (EC2 launch
        type): their ARNs. `gpus` adds a GPU resource with that many GPU ids; architecture
        is "x86_64" or "arm64" (attribute ecs.cpu-architecture). See local/fleet.py."""
        body = {
            "cluster": cluster,
            "count": count,
            "cpu": cpu,
            "memory": memory,
            "gpus": gpus,
            "architecture": architecture,
        }
        arns: list[str] = self._call("POST", "container-instances", body)["containerInstanceArns"]
        return arns

    def clear_faults(self) -> None:
        self._call("POST", "faults/clear", {})

    def quotas(self) -> dict[str, Any]:
        """The Fargate vCPU quotas and the vCPUs in use per account/region."""
        result: dict[str, Any] = self._call("GET", "quotas")
        return result

    def set_quotas(
        self, fargate_vcpu: float | None = None, fargate_spot_vcpu: float | None = None
    ) -> None:
        """Set the account's Fargate On-Demand and/or Spot vCPU quota (None: unchanged)."""
        body = {"fargateOnDemandVcpu": fargate_vcpu, "fargateSpotVcpu": fargate_spot_vcpu}
        self._call("POST", "quotas", {k: v for k, v in body.items() if v is not None})

    def server_errors(self, take: bool = False) -> list[dict[str, Any]]:
        """The HTTP 5xx moto answered (each a bug of the local AWS; injected faults are not
        included), oldest first; `take` forgets them."""
        if take:
            result = self._call("POST", "server-errors/take", {})
        else:
            result = self._call("GET", "server-errors")
        errors: list[dict[str, Any]] = result["errors"]
        return errors
