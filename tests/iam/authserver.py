"""The local AWS with moto's IAM enforcement, in its own process: simulated tasks for the
engine's lifecycles, real task processes (``AuthAws(simulated=False)``) for FargateCluster.

``python -m tests.iam.authserver --port 0 --ready-fd N [--simulated]`` runs `dask-aws local
up` after two changes to how moto evaluates a request against a policy, so
that the printed policy, scoped as it would be on AWS, can be tested unchanged:

* IAM role actions: moto names the resource (the role's ARN) only when the role already
  exists and passes ``*`` otherwise (CreateRole, GetRole of a role not created yet). AWS
  evaluates the ARN built from the name either way; so does this server.
* Every other service: moto passes ``*`` as the resource (it does not know it). Here an
  unnamed resource matches any ``Resource`` pattern, so only the action is checked there.

Conditions are not evaluated by moto; ``iam:PassRole`` is never checked; STS
GetCallerIdentity is always allowed (as on AWS). Auth starts off: create the admin
identity, then ``POST /moto-api/reset-auth`` with body ``0`` (see :class:`AuthAws`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def patch_moto() -> None:
    from moto.iam.access_control import IAMPolicyStatement
    from moto.iam.responses import IamResponse

    def resolve_role_arn(self: Any, role_name: str) -> str:
        try:
            return str(self.backend.get_role(role_name).arn)
        except Exception:  # NoSuchEntity: the ARN AWS would evaluate for that name
            return f"arn:{self.partition}:iam::{self.current_account}:role/{role_name}"

    original = IAMPolicyStatement._check_element_matches

    def check_element_matches(self: Any, element: Any, value: str) -> bool:
        if element == "Resource" and value == "*":
            return True
        return bool(original(self, element, value))

    IamResponse._resolve_resource_arn = resolve_role_arn  # type: ignore[method-assign]
    IAMPolicyStatement._check_element_matches = check_element_matches  # type: ignore[method-assign,assignment]


class AuthAws:
    """Start/stop the server above; ``endpoint_url``, ``enable_auth()``."""

    def __init__(self, region: str = "us-east-1", simulated: bool = True) -> None:
        self.region = region
        self.simulated = simulated
        self.port = 0
        self.log_path = Path(tempfile.mkstemp(prefix="dask-aws-iam-", suffix=".log")[1])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> AuthAws:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "tests.iam.authserver", "--port", "0"]
        command += ["--simulated"] if self.simulated else ["--stop-timeout", "5"]
        command += ["--region", self.region, "--ready-fd", str(write_fd)]
        command += ["--parent-pid", str(os.getpid())]
        with self.log_path.open("ab") as log:
            try:
                self._process = subprocess.Popen(
                    command,
                    pass_fds=(write_fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                    cwd=REPO_ROOT,
                )
            finally:
                os.close(write_fd)
        try:
            data = b""
            deadline = time.monotonic() + timeout
            while b"\n" not in data and time.monotonic() < deadline:
                if select.select([read_fd], [], [], 0.5)[0]:
                    chunk = os.read(read_fd, 4096)
                    if not chunk:
                        break
                    data += chunk
                elif self._process.poll() is not None:
                    break
        finally:
            os.close(read_fd)
        if b"\n" not in data:
            self.stop()
            raise RuntimeError(f"auth server did not start:\n{self.log_path.read_text()[-3000:]}")
        self.port = int(json.loads(data.split(b"\n", 1)[0])["port"])
        return self

    def _post(self, path: str, body: bytes, content_type: str) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint_url}{path}",
            data=body,
            method="POST",
            headers={"Content-Type": content_type},
        )
        with _NO_PROXY.open(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def enable_auth(self) -> None:
        """From now on every request must be signed by an IAM user and be allowed."""
        self._post("/moto-api/reset-auth", b"0", "text/plain")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> AuthAws:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    patch_moto()
    from dask_aws.local.cli import main

    sys.exit(main(sys.argv[1:]))
