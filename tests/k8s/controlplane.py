"""A real Kubernetes control plane for tests: etcd + kube-apiserver (+ optional
kube-controller-manager), compiled from pinned Go modules by ``build.sh``.

No kubelet and no scheduler: pods never run. The API server does the real
thing for everything else (schema and CEL validation, subresources, RBAC,
resourceVersion, watches). The controller-manager, when built, runs only the
garbage collector and the namespace controller.

Command line::

    python tests/k8s/controlplane.py --dir /tmp/cp   # Ctrl-C / SIGTERM stops it
    export KUBECONFIG=/tmp/cp/kubeconfig

Library::

    with ControlPlane(tmp_path) as cp:
        cp.kubectl("get", "ns")
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
BINARIES = ("kube-apiserver", "etcd", "kubectl", "helm")
CONTROLLER_MANAGER = "kube-controller-manager"
#: Controllers the optional kube-controller-manager runs.
CONTROLLERS = "garbage-collector-controller,namespace-controller"
#: Service CIDR: only an allocation range inside the API server, never routed.
SERVICE_CIDR = "10.0.0.0/24"
ADMIN_USER = "admin"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or used."""


class CommandError(subprocess.CalledProcessError):
    """A failed kubectl/helm call; ``str()`` includes its stderr and stdout."""

    def __str__(self) -> str:
        parts = [super().__str__()]
        for label, text in (("stderr", self.stderr), ("stdout", self.output)):
            if text:
                parts.append(f"{label}:\n{str(text).rstrip()}")
        return "\n".join(parts)


def pinned_versions() -> dict[str, str]:
    """The pinned versions, read from go.mod and build.sh."""
    gomod = (HERE / "go.mod").read_text()
    versions: dict[str, str] = {}
    for key, module in (("kubernetes", "k8s.io/kubernetes"), ("etcd", "go.etcd.io/etcd/server/v3")):
        match = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", gomod, re.M)
        if match is None:
            raise ControlPlaneError(f"{module} is not pinned in {HERE / 'go.mod'}")
        versions[key] = match.group(1)
    match = re.search(r"^HELM_VERSION=(v\S+)", BUILD_SCRIPT.read_text(), re.M)
    if match is None:
        raise ControlPlaneError(f"HELM_VERSION is not set in {BUILD_SCRIPT}")
    versions["helm"] = match.group(1)
    return versions


def build_binaries(*, quiet: bool = False) -> Path:
    """Run build.sh (a no-op when already built) and return the bin directory.

    Its progress is copied to this process's stderr unless ``quiet``. Raises
    ControlPlaneError with the end of the build's output when it fails.
    """
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with subprocess.Popen(
        ["bash", str(BUILD_SCRIPT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stdout = proc.stdout
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
        reader.start()
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            if not quiet:
                sys.stderr.write(line)
                sys.stderr.flush()
        reader.join()
    lines = "".join(out).strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ControlPlaneError(
            f"{BUILD_SCRIPT} failed with exit code {proc.returncode}:\n" + "\n".join(tail)
        )
    return Path(lines[-1])


def resolve_bin_dir(bin_dir: str | os.PathLike[str] | None = None) -> Path:
    """``bin_dir``, else $DASK_AWS_K8S_BIN, else the output of build.sh."""
    chosen = bin_dir if bin_dir is not None else os.environ.get("DASK_AWS_K8S_BIN") or None
    path = Path(chosen) if chosen is not None else build_binaries()
    missing = [name for name in BINARIES if not os.access(path / name, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{path} lacks executables: {', '.join(missing)}")
    return path


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together while chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGKILL when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return preexec


# --------------------------------------------------------------------------- PKI


def _write_pki(pki: Path) -> None:
    """CA, serving certificate for 127.0.0.1/localhost, service-account RSA key."""
    pki.mkdir(parents=True, exist_ok=True)
    try:
        import dask_aws.certs  # noqa: F401  (cryptography, and the project's CA builder)
    except ImportError:
        _write_pki_openssl(pki)
    else:
        _write_pki_cryptography(pki)
    for key in ("ca.key", "serving.key", "sa.key"):
        (pki / key).chmod(0o600)


def _write_pki_cryptography(pki: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from dask_aws import certs

    def pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365)

    ca_cert, ca_key = certs.new_ca("dask-aws-test-ca", not_before, not_after)
    ca_name = ca_cert.subject
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())

    serving_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
    ]
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(serving_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    (pki / "ca.key").write_bytes(pem_key(ca_key))
    (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (pki / "serving.key").write_bytes(pem_key(serving_key))
    (pki / "serving.crt").write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    (pki / "sa.key").write_bytes(pem_key(sa_key))


def _write_pki_openssl(pki: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError(
            "neither the Python 'cryptography' package nor openssl is available"
        )

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=pki, check=True, capture_output=True)

    run(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "365", "-subj", "/CN=dask-aws-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    run(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "serving.key", "-out", "serving.csr", "-subj", "/CN=kube-apiserver",
    )  # fmt: skip
    (pki / "serving.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    run(
        "x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "serving.crt", "-days", "365", "-extfile", "serving.ext",
    )  # fmt: skip
    run("genrsa", "-out", "sa.key", "2048")


# ------------------------------------------------------------------ kubeconfig


def _kubeconfig(server: str, ca_file: Path, user: str, token: str, namespace: str) -> str:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dask-aws-test",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "dask-aws-test", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
        "preferences": {},
    }
    # JSON is YAML; no third-party dependency needed to write it.
    return json.dumps(config, indent=2) + "\n"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


# ---------------------------------------------------------------- ControlPlane


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) on free loopback ports.

    ``directory`` holds everything: pki/, etcd data, logs/, ``kubeconfig``
    (cluster-admin through a static token) and service-account kubeconfigs.
    ``bin_dir`` defaults to $DASK_AWS_K8S_BIN, else build.sh's output. The
    controller-manager runs when built unless ``controller_manager=False``.
    ``crds``, a file or directory, is applied (and waited for) before the
    controller-manager starts. Children are started in their own session and,
    on Linux, get SIGKILL if the thread that started them dies, so nothing is
    left behind.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        bin_dir: str | os.PathLike[str] | None = None,
        *,
        controller_manager: bool | None = None,
        crds: str | os.PathLike[str] | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.bin_dir = resolve_bin_dir(bin_dir)
        has_kcm = os.access(self.bin_dir / CONTROLLER_MANAGER, os.X_OK)
        if controller_manager and not has_kcm:
            raise ControlPlaneError(f"{self.bin_dir} has no {CONTROLLER_MANAGER}")
        self.with_controller_manager = has_kcm if controller_manager is None else controller_manager
        self.crds = Path(crds) if crds is not None else None
        self.start_timeout = start_timeout
        self.kubeconfig = self.directory / "kubeconfig"
        self.pki = self.directory / "pki"
        self.logs = self.directory / "logs"
        self.ca_file = self.pki / "ca.crt"
        self.token = secrets.token_hex(24)
        self.etcd_port = 0
        self.port = 0
        self.server = ""
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs.values())

    def start(self) -> None:
        """Start etcd, kube-apiserver and the controller-manager; wait for /readyz."""
        if self._procs:
            raise ControlPlaneError("control plane already started")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if not (self.pki / "sa.key").exists():
            _write_pki(self.pki)
        _write_private(self.pki / "tokens.csv", f"{self.token},{ADMIN_USER},admin,system:masters\n")
        try:
            # A port picked free can be taken before the server binds it: retry.
            for attempt in range(3):
                self.etcd_port, etcd_peer_port, self.port = _free_ports(3)
                self.server = f"https://127.0.0.1:{self.port}"
                try:
                    self._start_etcd(etcd_peer_port)
                    self._start_apiserver()
                    break
                except ControlPlaneError:
                    if attempt == 2 or not self._port_conflict():
                        raise
                    self._stop_processes()
            _write_private(
                self.kubeconfig,
                _kubeconfig(self.server, self.ca_file, ADMIN_USER, self.token, "default"),
            )
            if self.crds is not None:
                # Before the controller-manager, so that its garbage collector
                # knows these kinds from the start (it rediscovers only every 30s).
                self.apply_crds(self.crds)
            if self.with_controller_manager:
                self._start_controller_manager()
        except BaseException:
            self._stop_processes()
            raise

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        self._stop_processes()

    # -- process handling ----------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        finally:
            log.close()
        with self._lock:
            self._procs[name] = proc
        return proc

    def _log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _port_conflict(self) -> bool:
        return any(
            "address already in use" in self._log_tail(name, 200)
            for name in ("etcd", "kube-apiserver")
        )

    def _stop_processes(self) -> None:
        # In reverse start order, each one gone before the next: kube-apiserver
        # shuts down promptly only while etcd is still there.
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        for proc in reversed(procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            proc.wait()

    def _wait_for(self, name: str, url: str, ok: Callable[[bytes], bool]) -> None:
        proc = self._procs[name]
        deadline = time.monotonic() + self.start_timeout
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        last = "no answer yet"
        while True:
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode} while starting; "
                    f"log {self.logs / (name + '.log')}:\n{self._log_tail(name)}"
                )
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as resp:
                    body = resp.read()
                if ok(body):
                    return
                last = body.decode(errors="replace")[:500]
            except urllib.error.HTTPError as err:
                last = f"HTTP {err.code}: {err.read().decode(errors='replace')[-2000:]}"
            except (OSError, ssl.SSLError) as err:
                last = repr(err)
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{name} not ready at {url} after {self.start_timeout:.0f}s: {last}\n"
                    f"log {self.logs / (name + '.log')}:\n{self._log_tail(name)}"
                )
            time.sleep(0.1)

    def _start_etcd(self, peer_port: int) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        data = self.directory / "etcd"
        shutil.rmtree(data, ignore_errors=True)
        self._spawn(
            "etcd",
            [
                "--name=default",
                f"--data-dir={data}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait_for("etcd", f"{client}/health", lambda body: b'"true"' in body)

    def _start_apiserver(self) -> None:
        sa_key = self.pki / "sa.key"
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--cert-dir={self.pki}",
                f"--tls-cert-file={self.pki / 'serving.crt'}",
                f"--tls-private-key-file={self.pki / 'serving.key'}",
                f"--client-ca-file={self.ca_file}",
                f"--token-auth-file={self.pki / 'tokens.csv'}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer={self.server}/",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait_for(
            "kube-apiserver", f"{self.server}/readyz", lambda body: body.strip() == b"ok"
        )

    def _start_controller_manager(self) -> None:
        proc = self._spawn(
            CONTROLLER_MANAGER,
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={CONTROLLERS}",
                "--leader-elect=false",
                "--secure-port=0",
                "--use-service-account-credentials=false",
                "--concurrent-gc-syncs=5",
                "--concurrent-namespace-syncs=5",
                "--v=1",
            ],
        )
        time.sleep(0.2)
        if proc.poll() is not None:
            raise ControlPlaneError(
                f"{CONTROLLER_MANAGER} exited with code {proc.returncode}:\n"
                f"{self._log_tail(CONTROLLER_MANAGER)}"
            )

    # -- clients -------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env["KUBECACHEDIR"] = str(self.directory / "kube-cache")
        helm_home = self.directory / "helm"
        env["HELM_CACHE_HOME"] = str(helm_home / "cache")
        env["HELM_CONFIG_HOME"] = str(helm_home / "config")
        env["HELM_DATA_HOME"] = str(helm_home / "data")
        return env

    def _run(
        self,
        binary: str,
        args: Sequence[str],
        *,
        input: str | None,
        check: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / binary), *args]
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self,
        *args: str,
        kubeconfig: str | os.PathLike[str] | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane (admin unless ``kubeconfig``)."""
        config = Path(kubeconfig) if kubeconfig is not None else self.kubeconfig
        return self._run(
            "kubectl",
            [f"--kubeconfig={config}", *args],
            input=input,
            check=check,
            timeout=timeout,
        )

    def helm(
        self,
        *args: str,
        kubeconfig: str | os.PathLike[str] | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 300.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this control plane (admin unless ``kubeconfig``)."""
        config = Path(kubeconfig) if kubeconfig is not None else self.kubeconfig
        return self._run(
            "helm",
            [f"--kubeconfig={config}", *args],
            input=input,
            check=check,
            timeout=timeout,
        )

    def create_namespace(self, name: str) -> str:
        self.kubectl("create", "namespace", name)
        return name

    def apply_crds(self, directory: str | os.PathLike[str], timeout: float = 60.0) -> list[str]:
        """``kubectl apply -f directory`` and wait until its CRDs are Established.

        Returns the applied object names (``kind.group/name``).
        """
        applied = self.kubectl("apply", "-f", str(directory), "-o", "name").stdout.split()
        crds = [name for name in applied if name.startswith("customresourcedefinition")]
        if crds:
            self.kubectl(
                "wait", "--for=condition=Established", f"--timeout={timeout:.0f}s", *crds,
                timeout=timeout + 30,
            )  # fmt: skip
        return applied

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        *,
        create: bool = True,
        duration: str = "24h",
    ) -> Path:
        """A kubeconfig authenticating as ServiceAccount ``namespace/name``.

        Mints a token through the TokenRequest API (``kubectl create token``),
        so the caller has exactly the RBAC granted to that ServiceAccount.
        Creates the ServiceAccount first if it does not exist and ``create``.
        """
        if create:
            exists = self.kubectl("get", "serviceaccount", name, "-n", namespace, check=False)
            if exists.returncode != 0:
                self.kubectl("create", "serviceaccount", name, "-n", namespace)
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        path = self.directory / "serviceaccounts" / f"{namespace}.{name}.kubeconfig"
        _write_private(path, _kubeconfig(self.server, self.ca_file, user, token, namespace))
        return path

    def version(self) -> dict[str, Any]:
        """The API server's /version document."""
        result: dict[str, Any] = json.loads(self.kubectl("get", "--raw", "/version").stdout)
        return result


# ---------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, help="state directory (default: a new temp dir)")
    parser.add_argument(
        "--bin-dir", type=Path, help="binaries (default: $DASK_AWS_K8S_BIN or build)"
    )
    parser.add_argument("--crds", type=Path, help="CRD file or directory to apply at start")
    parser.add_argument(
        "--no-controller-manager", action="store_true", help="run only etcd and kube-apiserver"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="dask-aws-k8s-"))
    started = time.monotonic()
    cp = ControlPlane(
        directory,
        args.bin_dir,
        controller_manager=False if args.no_controller_manager else None,
        crds=args.crds,
    )
    with cp:
        print(
            f"control plane ready in {time.monotonic() - started:.1f}s: {cp.server}\n"
            f"export KUBECONFIG={cp.kubeconfig}\n"
            f"logs: {cp.logs}  (Ctrl-C or SIGTERM stops it)",
            flush=True,
        )
        while not stop.wait(0.5):
            if not cp.running:
                print("a control-plane process exited; stopping", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
