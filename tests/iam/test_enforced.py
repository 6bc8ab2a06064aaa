"""The printed policy, under IAM enforcement (moto's, see authserver.py): it suffices for
the engine's whole lifecycle in each mode, and without any one of its actions some step
of that lifecycle fails (the policy is minimal).

What moto cannot show: conditions are not evaluated, resources are checked only for IAM
roles, and implied actions (tag-on-create, iam:PassRole, the ECS service-linked role) are
never asked for. Those rest on AWS's documentation (see dask_aws.iam.permissions).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from dask_aws.iam import permissions
from tests.iam.authserver import AuthAws
from tests.iam.lifecycle import OPTIONS, Brought, Identities, Run, lifecycle

pytestmark = pytest.mark.slow


@dataclass
class World:
    server: AuthAws
    identities: Identities
    brought: Brought

    def run(
        self,
        mode: permissions.Mode,
        user: str,
        without: tuple[str, ...] = (),
        document: dict[str, Any] | None = None,
    ) -> Run:
        document = document or permissions.policy(mode, OPTIONS[mode], without=without)
        boto = self.identities.user(user, document)
        return lifecycle(mode, boto, self.server.endpoint_url, self.identities.admin, self.brought)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with AuthAws() as server:
        identities = Identities(server.endpoint_url)
        server.enable_auth()
        yield World(server, identities, Brought.create(identities.admin))


def _slug(mode: str) -> str:
    return "ca" if mode == "create-all" else "byo"


def test_auth_is_enforced(world: World) -> None:
    unrelated = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}],
    }
    denied = world.run("bring-your-own", "nobody", document=unrelated)
    assert denied.failed and denied.failed.startswith("create:")
    assert denied.denied, "expected AWS to deny the first call"


@pytest.mark.parametrize("mode", permissions.MODES)
def test_policy_suffices_for_the_whole_lifecycle(world: World, mode: permissions.Mode) -> None:
    run = world.run(mode, f"full-{_slug(mode)}")
    assert run.failed is None, run.failed
    assert run.denied == []
    used = set(run.calls) - set(permissions.NO_PERMISSION_NEEDED)
    # Every direct action is used by the lifecycle, and nothing undeclared is called.
    assert used == permissions.actions(mode, direct=True)
    # Implied actions are never called by the engine itself: AWS checks them alongside.
    assert not used & (
        permissions.actions(mode, direct=False) - permissions.actions(mode, direct=True)
    )
    print(f"{mode}: {len(run.calls)} calls, {len(used)} actions, {run.seconds:.1f}s")


@pytest.mark.parametrize("mode", permissions.MODES)
def test_policy_is_minimal(world: World, mode: permissions.Mode) -> None:
    removable = sorted(permissions.actions(mode, direct=True))
    started = time.monotonic()

    def without(action: str) -> tuple[str, Run]:
        user = f"no-{_slug(mode)}-{action.replace(':', '-')}"
        return action, world.run(mode, user, without=(action,))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(without, removable))
    elapsed = time.monotonic() - started
    still_fine = [a for a, run in results.items() if run.failed is None]
    assert still_fine == [], f"the lifecycle succeeds without {still_fine}: not minimal"
    for action, run in sorted(results.items()):
        assert action in run.denied, f"{action}: failed at {run.failed}, but not by denial"
        step, _, why = (run.failed or "").partition(": ")
        print(f"without {action:<36} fails at {step!r}: {why[:70]}")
    print(f"{mode}: {len(removable)} lifecycles in {elapsed:.1f}s")
