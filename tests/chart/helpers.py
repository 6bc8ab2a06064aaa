"""Chart test plumbing: render the chart, and run the operator the way its Deployment would
(the image's ENTRYPOINT plus the Deployment's args and env) as the chart's ServiceAccount."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.operator import http_status, http_text, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "dask-aws-operator"
DOCKERFILE = REPO_ROOT / "Dockerfile"


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(k8s: Any, *args: str, release: str = "rel", namespace: str = "dask-aws") -> list[Any]:
    """`helm template` of the chart; raises CommandError with helm's message on failure."""
    out = k8s.helm("template", release, str(CHART), "-n", namespace, *args).stdout
    return documents(out)


def find(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = find(docs, kind)
    return doc


def entrypoint() -> list[str]:
    """The Dockerfile's (last) ENTRYPOINT, exec form."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("ENTRYPOINT")]
    command: list[str] = json.loads(lines[-1].split(None, 1)[1])
    return command


def image_env() -> dict[str, str]:
    """The final stage's ENV (but PATH): what the image gives the process before the pod."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                if key != "PATH":
                    env[key] = value
    return env


# The root filesystem read-only and /tmp writable, as readOnlyRootFilesystem plus the
# chart's /tmp emptyDir give the container (Linux mount namespace; needs CAP_SYS_ADMIN).
_READ_ONLY_ROOT = (
    'mount --make-rprivate / && mount --bind /tmp /tmp && mount -o remount,bind,ro / && exec "$@"'
)


def read_only_root_available() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", _READ_ONLY_ROOT + " 2>/dev/null", "sh", "sh", "-c",
         "! touch /.dask-aws-rw-probe 2>/dev/null"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return probe.returncode == 0


def _executable(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


class DeployedOperator:
    """The container of a Deployment, run as a local process: the Dockerfile's ENTRYPOINT
    and ENV, the container's args and plain env values, a read-only root filesystem but
    /tmp where the machine allows it; a kubeconfig in place of the in-cluster token, and
    the local AWS's endpoint and credentials."""

    def __init__(
        self, deployment: dict[str, Any], kubeconfig: Path, aws_env: dict[str, str], log: Path
    ) -> None:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        self.container = container
        command = entrypoint()
        self.argv = [_executable(command[0]), *command[1:], *container.get("args", [])]
        self.env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        self.ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        self.kubeconfig, self.aws_env, self.log = kubeconfig, aws_env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.read_only_root = read_only_root_available()
        if self.read_only_root:
            self.argv = ["unshare", "-m", "sh", "-c", _READ_ONLY_ROOT, "sh", *self.argv]

    def start(self, timeout: float = 60.0) -> DeployedOperator:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DASK_AWS_")},
            **image_env(),
            **self.env,
            **self.aws_env,
            "KUBECONFIG": str(self.kubeconfig),
        }
        env["DASK_AWS_LOOPBACK_ONLY"] = os.environ.get("DASK_AWS_LOOPBACK_ONLY", "1")
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while self.healthz() != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not become healthy:\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def healthz(self) -> int | None:
        return http_status(f"http://127.0.0.1:{self.ports['probe']}/healthz")

    def metrics(self) -> str:
        return http_text(f"http://127.0.0.1:{self.ports['metrics']}/metrics")

    def stop(self) -> None:
        stop_process_group(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
