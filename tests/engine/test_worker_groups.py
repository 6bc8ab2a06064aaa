"""Worker groups on the local AWS (simulated tasks), the engine driven as the operator drives
it: a named Spot group next to the default workers, its own task definition, status entry
and Events; changed on its own, removed on its own, deleted with the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.engine import scheduler_api
from dask_aws.engine.delete import delete
from dask_aws.engine.events import Event
from dask_aws.engine.reconcile import Result, reconcile
from dask_aws.local import LocalAws
from dask_aws.status import ClusterStatus, Phase
from tests.fixtures.aws_clients import aws_for
from tests.fixtures.engine import Cleanup, target
from tests.fixtures.leaks import tagged_resources
from tests.fixtures.polling import wait_for

SMALL = {"cpu": 512, "memory": 1024}
SPOT = {"name": "spot", "capacity": "SpotWithFallback", "replicas": 2, **SMALL}
GROUP_KEY = "worker-task-definition/spot"


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    made = Cleanup()
    try:
        yield made
    finally:
        made.delete_all()


def _target(name: str, **spec: Any) -> Target:
    spec.setdefault("workerGroups", [SPOT])
    return target(name, scheduler=SMALL, workers={"replicas": 1, **SMALL}, **spec)


def _with_groups(tgt: Target, groups: list[dict[str, Any]]) -> Target:
    validated = type(tgt.spec).model_validate({**tgt.spec.wire(), "workerGroups": groups})
    return Target(tgt.owner, validated)


class Steps:
    """Reconciles as the operator does (each step given the previous status), keeping every
    step's Events."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.status = ClusterStatus()
        self.events: list[Event] = []

    def step(self, tgt: Target) -> Result:
        result = reconcile(self.aws, tgt, previous=self.status)
        assert result.error is None, result.error.message
        self.status = result.status
        self.events += result.events
        return result

    def converge(self, tgt: Target, timeout: float = 60.0) -> Result:
        def ready() -> Result | None:
            result = self.step(tgt)
            return result if result.ready else None

        return wait_for(
            ready,
            timeout,
            lambda: f"Ready; last status: {self.status.wire()}",
            interval=0.2,
        )

    def messages(self, reason: str) -> list[str]:
        return [e.message for e in self.events if e.reason == reason]


def _tasks(aws: Aws, status: ClusterStatus, uid: str) -> list[dict[str, Any]]:
    cluster = status.aws.cluster_arn
    arns = aws.ecs.list_tasks(cluster=cluster, startedBy=uid, desiredStatus="RUNNING")
    if not arns["taskArns"]:
        return []
    return aws.ecs.describe_tasks(cluster=cluster, tasks=arns["taskArns"])["tasks"]


def _of_group(tasks: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    return [t for t in tasks if t["group"].startswith(f"dask-aws:worker/{group}:")]


def _defaults(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tasks if t["group"].startswith("dask-aws:worker:")]


def _container(aws: Aws, arn: str) -> dict[str, Any]:
    return aws.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
        "containerDefinitions"
    ][0]


def test_a_spot_group_runs_beside_the_default_workers_and_is_reported(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("groups"))
    steps = Steps(aws)
    status = steps.converge(tgt).status
    assert status.phase is Phase.RUNNING
    (group,) = status.worker_groups
    wire = status.wire()["workerGroups"]
    assert wire == [
        {
            "name": "spot",
            "desired": 2,
            "running": 2,
            "pending": 0,
            "taskDefinitionArn": group.task_definition_arn,
        }
    ]
    assert group.task_definition_arn != status.aws.worker_task_definition_arn
    assert status.workers.running == 1
    tasks = _tasks(aws, status, tgt.owner.uid)
    scheduler_id = status.aws.scheduler_task_arn.rsplit("/", 1)[1]
    spot = _of_group(tasks, "spot")
    assert {t["group"] for t in spot} == {f"dask-aws:worker/spot:{scheduler_id}"}
    assert [t["capacityProviderName"] for t in spot] == ["FARGATE_SPOT"] * 2
    assert {t["taskDefinitionArn"] for t in spot} == {group.task_definition_arn}
    (default,) = _defaults(tasks)
    assert default.get("capacityProviderName") != "FARGATE_SPOT"
    started = steps.messages("WorkersStarted")
    assert any("worker group spot (2 on Fargate Spot, 0 on demand)" in m for m in started)


def test_without_spot_capacity_the_group_starts_on_demand_and_an_event_says_so(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("fallback"))
    steps = Steps(aws)
    local_aws_simulated.set_spot_capacity(False)
    try:
        status = steps.converge(tgt).status
    finally:
        local_aws_simulated.set_spot_capacity(True)
    spot = _of_group(_tasks(aws, status, tgt.owner.uid), "spot")
    assert len(spot) == 2
    assert all(t.get("capacityProviderName") != "FARGATE_SPOT" for t in spot)
    (fallback,) = steps.messages("SpotFallback")
    assert "worker group spot" in fallback and "on demand instead" in fallback
    assert "starting 2 on demand" in fallback


def test_the_groups_task_definition_drains_spot_workers_and_offers_its_resources(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    spot = {**SPOT, "replicas": 1, "resources": {"SPOT": 1, "MEM": 2.5}}
    tgt = cleanup(aws, _target("resources", workerGroups=[spot]))
    status = Steps(aws).converge(tgt).status
    group = _container(aws, status.worker_groups[0].task_definition_arn or "")
    assert group["stopTimeout"] == 120
    command = group["command"]
    assert "--preload-nanny" in command
    assert command[command.index("--resources") + 1] == "MEM=2.5,SPOT=1"
    assert group["memoryReservation"] == 1024
    # The on-demand default group keeps ECS's usual stop and Dask's plain worker.
    default = _container(aws, status.aws.worker_task_definition_arn or "")
    assert default["stopTimeout"] == 60
    assert "--preload-nanny" not in default["command"]
    assert "--resources" not in default["command"]


def test_changing_only_a_groups_memory_rolls_only_that_group(
    local_aws_simulated: LocalAws, cleanup: Cleanup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While rolling, each step asks the scheduler which workers joined; nothing listens
    # in simulated mode, so let it give up fast (then ECS's word counts).
    monkeypatch.setattr(scheduler_api, "TIMEOUT", 0.2)
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("roll-group"))
    steps = Steps(aws)
    before = steps.converge(tgt).status
    tasks = _tasks(aws, before, tgt.owner.uid)
    default_arns = {t["taskArn"] for t in _defaults(tasks)}
    spot_arns = {t["taskArn"] for t in _of_group(tasks, "spot")}

    changed = _with_groups(tgt, [{**SPOT, "memory": 2048}])
    after = steps.converge(changed).status
    tasks = _tasks(aws, after, tgt.owner.uid)
    assert {t["taskArn"] for t in _defaults(tasks)} == default_arns
    assert after.aws.scheduler_task_arn == before.aws.scheduler_task_arn
    assert after.aws.worker_task_definition_arn == before.aws.worker_task_definition_arn
    spot = _of_group(tasks, "spot")
    assert len(spot) == 2 and not spot_arns & {t["taskArn"] for t in spot}
    new_definition = after.worker_groups[0].task_definition_arn
    assert new_definition != before.worker_groups[0].task_definition_arn
    assert {t["taskDefinitionArn"] for t in spot} == {new_definition}
    assert {t["memory"] for t in spot} == {"2048"}


def test_removing_a_group_stops_its_workers_and_removes_its_task_definition(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("remove-group"))
    steps = Steps(aws)
    before = steps.converge(tgt).status
    assert GROUP_KEY in [c.kind for c in before.aws.created]
    definition = aws.ecs.describe_task_definition(
        taskDefinition=before.worker_groups[0].task_definition_arn
    )["taskDefinition"]
    family = definition["family"]

    without = _with_groups(tgt, [])
    after = steps.converge(without).status
    tasks = _tasks(aws, after, tgt.owner.uid)
    assert _of_group(tasks, "spot") == []
    assert len(_defaults(tasks)) == 1 and after.worker_groups == []
    active = aws.ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")
    assert [a for a in active["taskDefinitionArns"] if f"/{family}:" in a] == []
    assert GROUP_KEY not in [c.kind for c in after.aws.created]
    removed = steps.messages("RemovedUnused")
    assert any("task definition of worker group spot" in m for m in removed), steps.events


def test_deleting_a_cluster_with_groups_leaves_nothing_tagged(
    local_aws_simulated: LocalAws,
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = _target("delete-groups")
    steps = Steps(aws)
    status = steps.converge(tgt).status
    assert _of_group(_tasks(aws, status, tgt.owner.uid), "spot")

    wait_for(lambda: delete(aws, tgt, status.aws.created).done, 60, "the cluster deleted")
    assert tagged_resources(aws, tgt.owner.uid) == []


def test_an_interrupted_spot_worker_of_a_group_is_replaced_and_the_event_names_the_group(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("interrupted"))
    steps = Steps(aws)
    before = steps.converge(tgt).status
    tasks = _tasks(aws, before, tgt.owner.uid)
    victim, survivor = _of_group(tasks, "spot")
    default_arns = {t["taskArn"] for t in _defaults(tasks)}
    local_aws_simulated.kill_task(victim["taskArn"], spot=True)

    after = steps.converge(tgt).status
    spot = _of_group(_tasks(aws, after, tgt.owner.uid), "spot")
    assert victim["taskArn"] not in {t["taskArn"] for t in spot}
    assert survivor["taskArn"] in {t["taskArn"] for t in spot} and len(spot) == 2
    assert {t["taskArn"] for t in _defaults(_tasks(aws, after, tgt.owner.uid))} == default_arns
    assert after.worker_groups[0].running == 2
    (replaced,) = steps.messages("WorkerReplaced")
    assert "worker group spot" in replaced and "1 stopped worker" in replaced, replaced
    (stopped,) = aws.ecs.describe_tasks(cluster=after.aws.cluster_arn, tasks=[victim["taskArn"]])[
        "tasks"
    ]
    assert stopped["stopCode"] == "SpotInterruption"


def test_adding_a_group_to_a_running_cluster_starts_only_its_workers(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("add-group", workerGroups=[]))
    steps = Steps(aws)
    before = steps.converge(tgt).status
    assert before.worker_groups == []
    default_arns = {t["taskArn"] for t in _defaults(_tasks(aws, before, tgt.owner.uid))}

    after = steps.converge(_with_groups(tgt, [{**SPOT, "capacity": "OnDemand"}])).status
    tasks = _tasks(aws, after, tgt.owner.uid)
    assert {t["taskArn"] for t in _defaults(tasks)} == default_arns
    assert after.aws.scheduler_task_arn == before.aws.scheduler_task_arn
    spot = _of_group(tasks, "spot")
    assert len(spot) == 2 and all(t.get("capacityProviderName") != "FARGATE_SPOT" for t in spot)
    assert [(g.name, g.desired, g.running) for g in after.worker_groups] == [("spot", 2, 2)]
    assert GROUP_KEY in [c.kind for c in after.aws.created]


def test_a_spot_only_group_without_spot_capacity_waits_and_the_status_names_it(
    local_aws_simulated: LocalAws, cleanup: Cleanup
) -> None:
    aws, _ = aws_for(local_aws_simulated.endpoint_url)
    tgt = cleanup(aws, _target("spot-only", workerGroups=[{**SPOT, "capacity": "Spot"}]))
    steps = Steps(aws)
    local_aws_simulated.set_spot_capacity(False)
    try:

        def default_running() -> Result | None:
            result = steps.step(tgt)
            limited = steps.messages("CapacityLimited")
            return result if limited and result.status.workers.running == 1 else None

        result = wait_for(default_running, 30, "the default worker running", interval=0.2)
    finally:
        local_aws_simulated.set_spot_capacity(True)
    status = result.status
    assert not result.ready and status.workers.running == 1  # the default group runs
    assert [(g.name, g.desired, g.running) for g in status.worker_groups] == [("spot", 2, 0)]
    assert status.message and "worker group spot" in status.message
    (limited,) = steps.messages("CapacityLimited")
    assert "2 worker group spot task(s)" in limited
    assert steps.messages("SpotFallback") == []  # Spot means Spot: nothing on demand
    assert _of_group(_tasks(aws, status, tgt.owner.uid), "spot") == []
