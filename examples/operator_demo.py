"""The operator demo on the embedded defaults, start to finish on this machine:

local AWS (moto + real Dask processes) -> a real kube-apiserver -> `dask-aws operator`
-> kubectl apply -> Ready -> compute through a Client -> kubectl scale -> kubectl delete
-> nothing left on the local AWS. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.dask_clients import operator_client
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.polling import wait_for
from tests.k8s.controlplane import ControlPlane, resolve_bin_dir
from tests.operator.helpers import get, ready

from dask_aws.local import LocalAws

ROOT = Path(__file__).resolve().parents[1]
NS = "dask-demo"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dask-aws-demo-") as tmp:
        say("starting the local AWS (moto on 127.0.0.1 + a data plane running ECS tasks)")
        with LocalAws(port=0) as aws_local:
            print(f"    endpoint {aws_local.endpoint_url}")
            say("starting a real Kubernetes control plane (etcd + kube-apiserver)")
            with ControlPlane(Path(tmp) / "k8s", resolve_bin_dir()) as k8s:
                k8s.apply_crds(ROOT / "crds")
                k8s.create_namespace(NS)
                say("starting the operator: dask-aws operator -n " + NS)
                operator = OperatorProcess(
                    k8s.kubeconfig, aws_local.env(), NS, Path(tmp) / "operator.log"
                ).start()
                try:
                    run(k8s, aws_local)
                finally:
                    operator.stop()
    say("done: every process and resource the demo started is gone")
    return 0


def kubectl(k8s: ControlPlane, *args: str) -> str:
    print("    $ kubectl " + " ".join(args))
    out = k8s.kubectl(*args, "-n", NS, timeout=300).stdout
    print("    " + out.strip().replace("\n", "\n    "))
    return str(out)


def run(k8s: ControlPlane, aws_local: LocalAws) -> None:
    say("kubectl apply the example DaskAwsCluster")
    kubectl(k8s, "apply", "-f", str(ROOT / "examples" / "daskawscluster.yaml"))
    kubectl(k8s, "wait", "dac/demo", "--for=condition=Ready", "--timeout=180s")
    obj = ready(k8s, NS, "demo")
    kubectl(k8s, "get", "dac")
    address = obj["status"]["schedulerAddress"]

    say(f"computing on the cluster through a Client at {address}")
    print("    (mutual TLS: the client certificate comes from Secret demo-dask-connection)")
    with operator_client(k8s, NS, "demo", timeout=30) as client:
        total = client.submit(sum, range(1_000_001)).result()
        print(f"    sum(range(1_000_001)) = {total}")
        say("kubectl scale dac/demo --replicas=4")
        kubectl(k8s, "scale", "dac/demo", "--replicas=4")
        wait_for(lambda: len(client.scheduler_info(n_workers=-1)["workers"]) == 4, 180, "4 workers")
        futures = client.map(lambda x: x * x, range(100))
        print(f"    sum of squares over 4 workers = {sum(client.gather(futures))}")
        wait_for(
            lambda: (get(k8s, NS, "demo") or {}).get("status", {}).get("replicas") == 4,
            60,
            "status.replicas 4",
        )
        ready(k8s, NS, "demo")
        kubectl(k8s, "get", "dac")

    say("kubectl delete dac/demo: the finalizer removes everything on AWS first")
    kubectl(k8s, "delete", "dac/demo", "--timeout=180s")
    assert get(k8s, NS, "demo") is None
    aws, _ = aws_for(aws_local.endpoint_url)
    left = tagged_resources(aws, obj["metadata"]["uid"])
    print(f"    AWS resources tagged for this cluster: {json.dumps(left)}")
    if left:
        raise SystemExit("leaked resources")


if __name__ == "__main__":
    sys.exit(main())
