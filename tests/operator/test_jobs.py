"""DaskAwsJob end to end (real API server, local AWS, real Dask): four jobs at once in one
namespace under one operator: one that computes on its own cluster and completes, one that
keeps failing (backoffLimit 2), one past its activeDeadlineSeconds, and one on an existing
DaskAwsCluster, which it leaves running and unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.fixtures.aws_clients import aws_for
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for
from tests.operator.helpers import SMALL, apply, condition, event_reasons, get, manifest, ready
from tests.operator.job_helpers import finished, get_job, job_manifest, python, runner_tasks

pytestmark = [pytest.mark.slow, pytest.mark.k8s]

COMPUTE = python(
    "import os, sys\n"
    "from distributed import Client\n"
    "if os.environ.get('API_TOKEN', 's3cr3t') != 's3cr3t': sys.exit(5)\n"
    "client = Client(timeout=60)\n"
    "total = client.submit(sum, range(10)).result()\n"
    "print('RESULT', total, flush=True)\n"
)
FAIL = python("import sys; print('failing on purpose', flush=True); sys.exit(3)")
SLEEP = python("import time; time.sleep(600)")
FAST_RETRY = {"DASK_AWS_JOB_BACKOFF_SECONDS": "1"}


def _logs(k8s: Any, local_aws: Any, namespace: str, name: str) -> str:
    env = {**os.environ, **local_aws.env(), "KUBECONFIG": str(k8s.kubeconfig)}
    proc = subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", "job", "logs", name, "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_jobs_complete_fail_time_out_and_use_an_existing_cluster(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    aws, _ = aws_for(local_aws.endpoint_url)
    operator = start_operator(env=FAST_RETRY)
    apply(k8s, ns, manifest("shared", workers={"replicas": 1, **SMALL}))
    # The runner's own secret, through ECS secrets and its execution role.
    token = aws.secretsmanager.create_secret(Name=f"{ns}-token", SecretString="s3cr3t")["ARN"]
    apply(k8s, ns, job_manifest("ok", COMPUTE, runner={"secrets": {"API_TOKEN": token}}))
    # Followed from before the runner starts to after the job finished, then it exits.
    follow = subprocess.Popen(
        [sys.executable, "-m", "dask_aws.cli", "job", "logs", "ok", "-n", ns, "-f"],
        env={**os.environ, **local_aws.env(), "KUBECONFIG": str(k8s.kubeconfig)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    apply(
        k8s,
        ns,
        job_manifest(
            "flaky",
            FAIL,
            backoffLimit=2,
            cluster={"spec": {"scheduler": SMALL, "workers": {"replicas": 0, **SMALL}}},
        ),
    )
    apply(
        k8s,
        ns,
        job_manifest(
            "slow",
            SLEEP,
            activeDeadlineSeconds=30,
            cluster={"spec": {"scheduler": SMALL, "workers": {"replicas": 0, **SMALL}}},
        ),
    )
    shared = ready(k8s, ns, "shared", timeout=180)
    apply(k8s, ns, job_manifest("on-shared", COMPUTE, cluster={"name": "shared"}))

    ok = finished(k8s, ns, "ok", timeout=240)
    assert condition(ok, "Complete")["status"] == "True", ok["status"]  # type: ignore[index]
    assert ok["status"]["runner"]["exitCode"] == 0
    assert ok["status"]["attempts"] == 1 and ok["status"]["succeeded"] == 1
    assert ok["status"]["startTime"] and ok["status"]["completionTime"]
    assert "RESULT 45" in _logs(k8s, local_aws, ns, "ok")
    followed, _ = follow.communicate(timeout=60)
    assert follow.returncode == 0 and "RESULT 45" in followed

    flaky = finished(k8s, ns, "flaky", timeout=240)
    failed = condition(flaky, "Failed")
    assert failed and failed["status"] == "True" and failed["reason"] == "BackoffLimitExceeded"
    assert flaky["status"]["attempts"] == 3 and flaky["status"]["failed"] == 3
    assert flaky["status"]["runner"]["exitCode"] == 3
    assert "exit code 3" in failed["message"]
    tasks = runner_tasks(aws, flaky["status"]["aws"]["clusterArn"], flaky["metadata"]["uid"])
    assert len(tasks) == 3
    assert event_reasons(k8s, ns, "flaky").count("RunnerFailed") == 3
    described = k8s.kubectl("describe", "daj", "flaky", "-n", ns).stdout
    assert "BackoffLimitExceeded" in described and "exit code 3" in described

    slow = finished(k8s, ns, "slow", timeout=240)
    failed = condition(slow, "Failed")
    assert failed and failed["reason"] == "DeadlineExceeded", slow["status"]
    slow_tasks = runner_tasks(aws, slow["status"]["aws"]["clusterArn"], slow["metadata"]["uid"])
    wait_for(
        lambda: all(
            t["lastStatus"] == "STOPPED"
            for t in runner_tasks(aws, slow["status"]["aws"]["clusterArn"], slow["metadata"]["uid"])
        ),
        60,
        "the runner of the job past its deadline to stop",
    )
    assert len(slow_tasks) == 1

    on_shared = finished(k8s, ns, "on-shared", timeout=120)
    assert condition(on_shared, "Complete")["status"] == "True", on_shared["status"]  # type: ignore[index]
    after = get(k8s, ns, "shared")
    assert after is not None and condition(after, "Ready")["status"] == "True"  # type: ignore[index]
    assert after["metadata"]["generation"] == shared["metadata"]["generation"]
    assert after["spec"] == shared["spec"]

    # Each job's own cluster is deleted once it finished; the terminal status stays put.
    for job in (ok, flaky, slow):
        owned = job["status"]["cluster"]["name"]
        wait_for(lambda: get(k8s, ns, owned) is None, 120, f"{owned} to be deleted")  # noqa: B023
    assert get_job(k8s, ns, "ok")["status"]["conditions"] == ok["status"]["conditions"]  # type: ignore[index]

    phases = operator.metrics()
    assert 'dask_aws_jobs{phase="Succeeded"} 2.0' in phases
    assert 'dask_aws_jobs{phase="Failed"} 2.0' in phases
    uids = [j["metadata"]["uid"] for j in (ok, flaky, slow, on_shared)]
    k8s.kubectl("delete", "daj", "--all", "-n", ns, "--timeout=120s")
    assert tagged_resources(aws, uids) == []
    k8s.kubectl("delete", "dac", "shared", "-n", ns, "--timeout=120s")
    assert tagged_resources(aws, shared["metadata"]["uid"]) == []


def _running(k8s: Any, ns: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = get_job(k8s, ns, name)
        status = (job or {}).get("status") or {}
        return job if status.get("phase") == "Running" and status.get("active") == 1 else None

    return wait_for(
        check, 180, lambda: f"{name} Running: {(get_job(k8s, ns, name) or {}).get('status')}"
    )


def _assert_runner_holds_no_secret(aws: Any, job: dict[str, Any], cluster: dict[str, Any]) -> None:
    """The runner reaches its TLS cluster with the client certificate named by reference
    (ECS secrets), never by value, and its execution role reads exactly that secret."""
    task = runner_tasks(aws, job["status"]["aws"]["clusterArn"], job["metadata"]["uid"])[0]
    definition = aws.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    container = definition["taskDefinition"]["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["DASK_SCHEDULER_ADDRESS"] == cluster["status"]["schedulerAddress"]
    assert env["DASK_SCHEDULER_ADDRESS"].startswith("tls://")
    assert not any("PRIVATE KEY" in v or "CERTIFICATE" in v for v in env.values())
    tls_secret = cluster["status"]["aws"]["tlsSecretArn"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"].startswith(tls_secret + ":")
    role = definition["taskDefinition"]["executionRoleArn"].rsplit("/", 1)[1]
    names = aws.iam.list_role_policies(RoleName=role)["PolicyNames"]
    documents = [
        aws.iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names
    ]
    resources = [r for d in documents for st in d["Statement"] for r in st["Resource"]]
    assert resources == [tls_secret]


def test_jobs_survive_deletion_reapply_suspend_and_an_operator_kill(
    k8s: Any, local_aws: Any, k8s_namespace: str, start_operator: Any
) -> None:
    ns = k8s_namespace
    aws, _ = aws_for(local_aws.endpoint_url)
    small = {"spec": {"scheduler": SMALL, "workers": {"replicas": 0, **SMALL}}}
    operator = start_operator(env=FAST_RETRY)
    apply(k8s, ns, job_manifest("mid", SLEEP, cluster=small))
    apply(k8s, ns, job_manifest("again", SLEEP, cluster=small))
    apply(k8s, ns, job_manifest("survivor", python("import time; time.sleep(20)"), cluster=small))
    apply(k8s, ns, job_manifest("paused", python("print('resumed')"), cluster=small, suspend=True))

    # Killed while its runner runs: the new operator finds attempt 1 instead of starting 2.
    survivor = _running(k8s, ns, "survivor")
    operator.kill()
    start_operator(env=FAST_RETRY)

    # Deleted mid-run: the runner stops, the job's cluster and everything on AWS go.
    mid = _running(k8s, ns, "mid")
    mid_cluster = get(k8s, ns, mid["status"]["cluster"]["name"])
    assert mid_cluster is not None
    _assert_runner_holds_no_secret(aws, mid, mid_cluster)
    k8s.kubectl("delete", "daj", "mid", "-n", ns, "--timeout=120s")
    assert get(k8s, ns, mid_cluster["metadata"]["name"]) is None
    uids = [mid["metadata"]["uid"], mid_cluster["metadata"]["uid"]]
    assert tagged_resources(aws, uids) == []
    assert all(
        t["lastStatus"] == "STOPPED"
        for t in runner_tasks(aws, mid["status"]["aws"]["clusterArn"], uids[0])
    )

    # Deleted and applied again at once under the same name (`kubectl delete` returns once
    # the finalizer is done; an apply before that would patch the old, terminating object):
    # a new job with a new cluster name, which finishes and (ttlSecondsAfterFinished: 0)
    # deletes itself.
    first = _running(k8s, ns, "again")
    k8s.kubectl("delete", "daj", "again", "-n", ns, "--timeout=120s")
    apply(
        k8s,
        ns,
        job_manifest("again", python("print('second')"), cluster=small, ttlSecondsAfterFinished=0),
    )
    second = wait_for(
        lambda: (
            (j := get_job(k8s, ns, "again"))
            and j["metadata"]["uid"] != first["metadata"]["uid"]
            and j
        ),
        120,
        "the second 'again' to exist",
    )
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    wait_for(
        lambda: get_job(k8s, ns, "again") is None,
        240,
        "the second 'again' to finish and delete itself",
    )
    assert "Completed" in event_reasons(k8s, ns, "again")
    assert get(k8s, ns, first["status"]["cluster"]["name"]) is None

    # Suspended from the start: nothing is created until it is resumed.
    paused = get_job(k8s, ns, "paused")
    assert paused is not None and paused["status"]["phase"] == "Suspended"
    assert condition(paused, "Suspended")["status"] == "True"  # type: ignore[index]
    assert (
        paused["status"]["cluster"].get("name") is None
        or get(k8s, ns, paused["status"]["cluster"]["name"]) is None
    )
    k8s.kubectl(
        "patch", "daj", "paused", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    paused = finished(k8s, ns, "paused", timeout=240)
    assert condition(paused, "Complete")["status"] == "True"  # type: ignore[index]
    assert condition(paused, "Suspended")["status"] == "False"  # type: ignore[index]

    survivor = finished(k8s, ns, "survivor", timeout=240)
    assert condition(survivor, "Complete")["status"] == "True", survivor["status"]  # type: ignore[index]
    assert survivor["status"]["attempts"] == 1
    assert (
        len(runner_tasks(aws, survivor["status"]["aws"]["clusterArn"], survivor["metadata"]["uid"]))
        == 1
    )

    everything = [
        first["metadata"]["uid"],
        second["metadata"]["uid"],
        paused["metadata"]["uid"],
        survivor["metadata"]["uid"],
    ]
    k8s.kubectl("delete", "daj", "--all", "-n", ns, "--timeout=120s")
    assert tagged_resources(aws, everything) == []
