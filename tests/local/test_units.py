"""Unit tests of the local AWS building blocks (no server)."""

from __future__ import annotations

import pytest

from dask_aws import fargate
from dask_aws.local import patches
from dask_aws.local.addresses import AddressPool
from dask_aws.local.faults import FaultPlan, error_response
from dask_aws.local.specs import bind_dask_command, container_argv, container_env
from dask_aws.local.strict import FARGATE_SIZES, parse_units


def test_addresses_are_loopback_and_quarantined() -> None:
    now = [0.0]
    pool = AddressPool(quarantine=10.0, clock=lambda: now[0])
    first, second = pool.allocate(), pool.allocate()
    assert (first, second) == ("127.1.0.1", "127.1.0.2")
    pool.release(first)
    assert pool.allocate() == "127.1.0.3"  # still quarantined
    now[0] = 11.0
    assert pool.allocate() == first
    assert first in pool.in_use()


def test_addresses_skip_network_and_broadcast_octets() -> None:
    pool = AddressPool(first="127.1.0.254")
    assert [pool.allocate() for _ in range(3)] == ["127.1.0.254", "127.1.1.1", "127.1.1.2"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["dask", "scheduler"],
            ["dask", "scheduler", "--host", "IP", "--dashboard-address", "IP:8787"],
        ),
        (
            ["dask", "scheduler", "--host=0.0.0.0"],
            ["dask", "scheduler", "--host=0.0.0.0", "--dashboard-address", "IP:8787"],
        ),
        (
            ["/venv/bin/dask-scheduler", "--dashboard-address", ":0"],
            ["/venv/bin/dask-scheduler", "--dashboard-address", ":0", "--host", "IP"],
        ),
        (["dask", "worker", "tcp://a:8786"], ["dask", "worker", "tcp://a:8786", "--host", "IP"]),
        (["dask-worker", "tcp://a:8786"], ["dask-worker", "tcp://a:8786", "--host", "IP"]),
        (  # no dask-cuda here: the local environment stands in for a RAPIDS image
            ["dask", "cuda", "worker", "tcp://a:8786"],
            ["dask", "worker", "tcp://a:8786", "--host", "IP"],
        ),
        (
            ["sh", "-c", 'exec "$@"', "sh", "dask", "cuda", "worker"],
            ["sh", "-c", 'exec "$@"', "sh", "dask", "worker", "--host", "IP"],
        ),
        (["sh", "-c", "dask scheduler"], ["sh", "-c", "dask scheduler"]),
        (  # a wrapper that execs "$@": the Dask command after it is bound
            ["sh", "-c", 'exec "$@"', "sh", "dask", "worker"],
            ["sh", "-c", 'exec "$@"', "sh", "dask", "worker", "--host", "IP"],
        ),
        (["python", "-m", "http.server"], ["python", "-m", "http.server"]),
    ],
)
def test_dask_commands_are_bound_to_the_task_address(argv: list[str], expected: list[str]) -> None:
    assert bind_dask_command(argv, "IP") == expected


def test_argv_and_env_follow_ecs_precedence() -> None:
    definition = {
        "entryPoint": ["tini", "--"],
        "command": ["dask", "scheduler"],
        "environment": [{"name": "A", "value": "td"}, {"name": "B", "value": "td"}],
        "secrets": [{"name": "S", "valueFrom": "arn:secret"}],
    }
    override = {"command": ["dask", "worker"], "environment": [{"name": "B", "value": "run"}]}
    assert container_argv(definition, None) == ["tini", "--", "dask", "scheduler"]
    assert container_argv(definition, override) == ["tini", "--", "dask", "worker"]
    env = container_env(definition, override, {"A": "base", "Z": "base"}, lambda ref: ref + "!")
    assert env == {"A": "td", "B": "run", "S": "arn:secret!", "Z": "base"}


def test_fault_plan_counts_down() -> None:
    plan = FaultPlan()
    plan.fail_next("ECS:RunTask", 2, "5xx")
    assert plan.take_failure("ecs:runtask") == "5xx"
    assert plan.take_failure("ecs:RunTask") == "5xx"
    assert plan.take_failure("ecs:RunTask") is None
    plan.capacity_failures(3, "FARGATE_SPOT")
    assert plan.take_capacity_failures("FARGATE", 5) == 0
    assert plan.take_capacity_failures("FARGATE_SPOT", 2) == 2
    assert plan.take_capacity_failures("FARGATE_SPOT", 2) == 1
    with pytest.raises(ValueError):
        plan.fail_next("RunTask", 1)


def test_error_bodies_match_the_protocols() -> None:
    assert b'"__type": "ThrottlingException"' in error_response("throttle", "json", "ecs").body
    assert b"<Code>RequestLimitExceeded</Code>" in error_response("throttle", "query", "ec2").body
    assert b"<Code>Throttling</Code>" in error_response("throttle", "query", "iam").body
    assert error_response("5xx", "json", "ecs").status == 500


def test_fargate_units() -> None:
    assert parse_units("1 vCPU", "vcpu") == 1024
    assert parse_units("2 GB", "gb") == 2048
    assert parse_units("512", "gb") == 512
    assert parse_units("garbage", "vcpu") == -1
    assert 30720 in FARGATE_SIZES[4096] and 30720 not in FARGATE_SIZES[256]


def test_the_local_fargate_sizes_agree_with_the_product() -> None:
    # Two transcriptions of AWS's table: the local AWS's is the product's oracle.
    assert {cpu: fargate.allowed_memory(cpu) for cpu in fargate.FARGATE_SIZES} == FARGATE_SIZES


def test_patches_install_and_uninstall_from_one_table() -> None:
    before = {patch: patch.target.__dict__[patch.name] for patch in patches.PATCHES}
    assert len({(patch.target, patch.name) for patch in patches.PATCHES}) == len(before)
    patches.install()
    try:
        patches.install()  # idempotent: the originals are still moto's own
        for patch in patches.PATCHES:
            installed = patch.target.__dict__[patch.name]
            assert getattr(installed, "__func__", installed) is patch.replacement
            original = before[patch]
            assert patches.original(patch.replacement) is getattr(original, "__func__", original)
    finally:
        patches.uninstall()
    assert {patch: patch.target.__dict__[patch.name] for patch in patches.PATCHES} == before


def test_addresses_with_taken_dask_ports_are_skipped() -> None:
    import socket

    from dask_aws.local.addresses import ports_free

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.77.0.1", 8786))
        listener.listen()
        assert not ports_free("127.77.0.1")
        pool = AddressPool(first="127.77.0.0")
        assert pool.allocate(ports_free) == "127.77.0.2"
