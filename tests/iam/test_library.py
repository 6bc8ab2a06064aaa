"""`dask-aws iam-policy --for library` and `--for gc` under IAM enforcement (moto's, see
authserver.py), on a local AWS that runs real task processes: a user holding exactly the
library policy runs FargateCluster -> heartbeat -> scale(2) -> get_logs() -> close(); a
user holding exactly the gc policy collects what a SIGKILLed FargateCluster process left.
Without any one of the library's or gc's extra actions (those beyond the operator's
policy) some step fails, denied.

What moto cannot show: resource scoping (ECS, Logs and EC2 resources are never checked),
so the library's heartbeat on a task definition (bring-your-own: ecs:TagResource on
task-definition/dask-*) and gc's ecs:DescribeClusters on every cluster rest on the table.
Only create-all (a FargateCluster that brings nothing) is run here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask.config
import pytest

import dask_aws.aws.clients
import dask_aws.cluster.core
from dask_aws import FargateCluster
from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.cluster.gc import inventory
from dask_aws.iam import permissions
from dask_aws.local.cli import CHECKIP_PATH
from tests.fixtures.polling import wait_for
from tests.iam.authserver import AuthAws
from tests.iam.lifecycle import REGION, Identities, Run, _Recorder
from tests.python_api.helpers import CHILD_PRELUDE, SMALL, read_line, spawn

pytestmark = pytest.mark.slow
MODE: permissions.Mode = "create-all"


@dataclass
class World:
    server: AuthAws
    identities: Identities
    recording: list[Run]

    @property
    def admin(self) -> Aws:
        return self.identities.admin

    def key(self, name: str, audience: permissions.Audience, without: tuple[str, ...] = ()) -> Any:
        document = permissions.policy(MODE, audience=audience, without=without)
        credentials = self.identities.user(name, document).get_credentials()
        assert credentials is not None
        return {
            "aws_access_key_id": credentials.access_key,
            "aws_secret_access_key": credentials.secret_key,
        }

    def env(self, key: dict[str, str]) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.server.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": key["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": key["aws_secret_access_key"],
            # Outside the VPC, FargateCluster() asks for this machine's public address.
            "DASK_DASK_AWS__CHECKIP_URL": self.server.endpoint_url + CHECKIP_PATH,
        }


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    recording: list[Run] = []
    real_connect = dask_aws.aws.clients.connect

    def connect(*args: Any, **kwargs: Any) -> Aws:
        aws = real_connect(*args, **kwargs)
        if recording:  # record the calls of the cluster under test
            _Recorder(aws.session, recording[-1])
        return aws

    with pytest.MonkeyPatch.context() as patch, AuthAws(simulated=False) as server:
        patch.setattr(dask_aws.cluster.core, "connect", connect)
        patch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
            patch.delenv(name, raising=False)
        identities = Identities(server.endpoint_url)
        server.enable_auth()
        with dask.config.set(
            {"dask_aws.heartbeat-interval": "1s", "dask_aws.reconcile-interval": "1s"}
        ):
            yield World(server, identities, recording)


def _heartbeat(admin: Aws, cluster_arn: str) -> float:
    (found,) = admin.ecs.describe_clusters(clusters=[cluster_arn], include=["TAGS"])["clusters"]
    return float(tags.from_list(found.get("tags"))[tags.HEARTBEAT])


def library_run(world: World, user: str, without: tuple[str, ...] = ()) -> Run:
    """start (public-IP path) -> heartbeat -> scale(2) -> get_logs() -> close() -> no leak."""
    run = Run()
    world.recording.append(run)
    key = world.key(user, "library", without)
    holder: list[FargateCluster] = []

    def start() -> None:
        holder.append(
            FargateCluster(
                n_workers=1,
                fargate_use_private_ip=False,  # the scheduler's public IP is looked up
                allowed_client_cidrs=["127.0.0.0/8"],
                quiet=True,
                **SMALL,
                **key,
            )
        )

    def heartbeat() -> None:
        cluster = holder[0]
        status = cluster.aws_status
        assert status is not None and status.aws.cluster_arn
        arn = status.aws.cluster_arn
        first = _heartbeat(world.admin, arn)
        wait_for(lambda: _heartbeat(world.admin, arn) > first, 6, "heartbeat refreshed", 0.2)

    def scale() -> None:
        cluster = holder[0]
        cluster.scale(2)
        wait_for(lambda: len(cluster.scheduler_info["workers"]) == 2, 40, "2 workers")

    def logs() -> None:
        cluster: Any = holder[0]  # distributed's get_logs is untyped
        got = cluster.get_logs()
        assert "Scheduler" in got and "Cluster" in got, sorted(got)

    def close() -> None:
        cluster = holder.pop()
        cluster.close()
        left = inventory(world.admin).get(cluster.uid)
        assert left is None, f"left behind: {left.resources if left else ''}"

    started = time.monotonic()
    steps = [("start", start), ("heartbeat", heartbeat), ("scale", scale)]
    steps += [("get_logs", logs), ("close", close)]
    try:
        for name, step in steps:
            try:
                step()
            except Exception as exc:
                run.failed = f"{name}: {type(exc).__name__}: {exc}"
                break
            run.steps.append(name)
    finally:
        for cluster in holder:
            with contextlib.suppress(Exception):
                cluster.close()
        world.recording.remove(run)
    run.seconds = time.monotonic() - started
    return run


def test_library_policy_suffices_and_each_extra_is_needed(world: World) -> None:
    extras = sorted(permissions.extras(MODE, "library"))
    assert extras == ["ec2:DescribeNetworkInterfaces", "logs:GetLogEvents"]
    full = library_run(world, "lib-full")
    assert full.failed is None, full.failed
    assert full.denied == []
    used = set(full.calls) - set(permissions.NO_PERMISSION_NEEDED)
    assert used <= permissions.actions(MODE, audience="library", direct=True)
    assert set(extras) <= used
    print(f"library: {len(full.calls)} calls, {len(used)} actions, {full.seconds:.1f}s")
    for action in extras:
        run = library_run(world, f"lib-no-{action.replace(':', '-')}", without=(action,))
        assert run.failed is not None, f"the library works without {action}: not minimal"
        assert action in run.denied, f"{action}: failed at {run.failed}, but not by denial"
        print(f"without {action:<32} fails at {run.failed[:90]!r} ({run.seconds:.1f}s)")


def _gc(world: World, key: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", "gc", *args],
        env={**os.environ, **world.env(key)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gc_policy_collects_a_killed_cluster_and_each_extra_is_needed(world: World) -> None:
    child = spawn(
        CHILD_PRELUDE
        + "cluster = FargateCluster(n_workers=1, quiet=True, **SMALL)\n"
        + "print('UID', cluster.uid, flush=True)\nsys.stdin.read()\n",
        world.env(world.key("gc-victim", "library")),
    )
    try:
        uid = read_line(child, "UID ")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert uid in inventory(world.admin)

    extras = sorted(permissions.extras(MODE, "gc"))
    assert extras == [
        "ecs:ListClusters",
        "ecs:ListTaskDefinitionFamilies",
        "iam:ListRoles",
        "secretsmanager:ListSecrets",
    ]
    for action in extras:
        key = world.key(f"gc-no-{action.replace(':', '-')}", "gc", without=(action,))
        denied = _gc(world, key, "--yes", "--owner", uid)
        output = denied.stdout + denied.stderr
        assert denied.returncode != 0, f"gc works without {action}: not minimal\n{output}"
        assert action.split(":")[1] in output and ("403" in output or "AccessDenied" in output)
        print(f"without {action:<32} gc fails: {output.strip().splitlines()[-1][:90]}")
    assert uid in inventory(world.admin)  # nothing was deleted by the failed runs

    key = world.key("gc-full", "gc")
    dry = _gc(world, key)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"gone  FargateCluster {uid[:8]} ({uid})" in dry.stdout
    collected = _gc(world, key, "--yes", "--owner", uid)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert f"deleted FargateCluster {uid[:8]} ({uid})" in collected.stdout
    assert uid not in inventory(world.admin)
    print(collected.stdout.strip().splitlines()[-1])
