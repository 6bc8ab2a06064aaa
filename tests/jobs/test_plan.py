"""The job plan is a pure function: its decisions are tested on hand-made observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dask_aws.jobs import plan
from dask_aws.jobs.plan import Attempt, ClusterView, Decision, Identity, JobView, decide
from dask_aws.jobs.spec import DaskAwsJobSpec
from dask_aws.jobs.status import JobConditionType, JobPhase, JobStatus

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CLUSTER_ARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/dask-etl"
IDENTITY = Identity(region="eu-west-1", cluster_arn=CLUSTER_ARN)
OWN = "etl-1a2b3c4d"
READY = ClusterView(name=OWN, owned=True, exists=True, ready=True, address="tls://10.0.0.5:8786")
C = JobConditionType


def spec(**fields: Any) -> DaskAwsJobSpec:
    return DaskAwsJobSpec.model_validate({"runner": {"command": ["python", "etl.py"]}, **fields})


def view(
    job: DaskAwsJobSpec | None = None,
    status: JobStatus | None = None,
    *,
    now: datetime = NOW,
    cluster: ClusterView = READY,
    attempts: tuple[Attempt, ...] = (),
    identity: Identity | None = IDENTITY,
    invalid: tuple[str, str] | None = None,
) -> JobView:
    return JobView(
        spec=job or spec(),
        status=status or JobStatus(),
        generation=1,
        now=now,
        cluster=cluster,
        attempts=attempts,
        identity=identity,
        backoff_seconds=10.0,
        log_group="/dask-aws/job/etl",
        invalid=invalid,
    )


def attempt(n: int, *, exit_code: int | None = None, ago: int = 0, **more: Any) -> Attempt:
    """Attempt n: live when no exit code is given, else stopped `ago` seconds before NOW."""
    arn = f"arn:aws:ecs:eu-west-1:123456789012:task/dask-etl/t{n}"
    if exit_code is None and "stopped_reason" not in more:
        return Attempt(number=n, arn=arn, live=True, started_at=NOW - timedelta(seconds=60))
    stopped = NOW - timedelta(seconds=ago)
    return Attempt(
        number=n,
        arn=arn,
        live=False,
        exit_code=exit_code,
        stop_code=more.pop("stop_code", "EssentialContainerExited"),
        started_at=stopped - timedelta(seconds=30),
        stopped_at=stopped,
        **more,
    )


def started(**fields: Any) -> JobStatus:
    """The status of a job whose cluster is Ready and whose identity is recorded."""
    return decide(view()).status.model_copy(update=fields)


def condition(decision: Decision, type_: JobConditionType) -> tuple[str, str] | None:
    found = [c for c in decision.status.conditions if c.type is type_]
    assert len(found) <= 1, found
    return (found[0].status, found[0].reason or "") if found else None


def reasons(decision: Decision) -> list[str]:
    return [e.reason for e in decision.events]


def test_a_new_job_creates_its_own_cluster_and_is_pending_from_now() -> None:
    d = decide(view(cluster=ClusterView(name=OWN, owned=True), identity=None))
    assert d.create_cluster and not d.delete_cluster and d.start_attempt is None
    assert d.status.phase is JobPhase.PENDING and d.status.start_time == "2026-11-27T12:00:00Z"
    assert OWN in (d.status.message or "") and "ClusterCreated" in reasons(d)
    assert condition(d, C.RECONCILING) == ("True", "ClusterNotFound")
    assert d.status.cluster.name == OWN and d.status.cluster.owned
    assert d.requeue_after == plan.STARTING_SECONDS


def test_a_missing_referenced_cluster_is_waited_for_and_never_created() -> None:
    d = decide(view(cluster=ClusterView(name="shared", owned=False), identity=None))
    assert not d.create_cluster and d.start_attempt is None
    assert d.status.phase is JobPhase.PENDING and not d.status.finished
    assert "DaskAwsCluster shared" in (d.status.message or "")
    assert d.status.cluster.name == "shared" and not d.status.cluster.owned


def test_a_starting_cluster_is_waited_for() -> None:
    d = decide(view(cluster=replace(READY, ready=False, address=None), identity=None))
    assert d.start_attempt is None and not d.create_cluster
    assert d.status.phase is JobPhase.PENDING and "to be Ready" in (d.status.message or "")


def test_a_ready_cluster_first_records_where_it_lives_then_attempt_1_starts() -> None:
    first = decide(view())
    assert first.start_attempt is None and first.requeue_after == 0.0
    assert first.status.aws.region == "eu-west-1" and first.status.aws.cluster_arn == CLUSTER_ARN
    assert first.status.cluster.scheduler_address == READY.address
    assert first.status.phase is JobPhase.PENDING
    second = decide(view(status=first.status))
    assert second.start_attempt == 1 and second.status.attempts == 1
    assert second.status.phase is JobPhase.RUNNING and second.status.active == 1
    assert second.status.runner.attempt == 1 and second.status.runner.log_group
    assert second.status.start_time == first.status.start_time  # not restarted


def test_a_live_attempt_is_running_and_no_other_starts() -> None:
    d = decide(view(status=started(attempts=1), attempts=(attempt(1),)))
    assert d.start_attempt is None and d.stop == []
    assert d.status.phase is JobPhase.RUNNING and d.status.active == 1
    assert d.status.runner.task_arn == attempt(1).arn
    assert d.status.runner.log_stream == "job/dask-runner/t1"
    assert condition(d, C.RECONCILING) == ("True", "RunnerRunning")
    assert d.requeue_after == plan.POLL_SECONDS


def test_an_attempt_that_exits_0_completes_the_job_and_cleans_up() -> None:
    d = decide(view(status=started(attempts=1), attempts=(attempt(1, exit_code=0),)))
    s = d.status
    assert s.phase is JobPhase.SUCCEEDED and s.finished
    assert condition(d, C.COMPLETE) == ("True", "Completed")
    assert condition(d, C.READY) == ("True", "Completed")
    assert condition(d, C.RECONCILING) == ("False", "Completed")
    assert condition(d, C.STALLED) == ("False", "Completed")
    assert condition(d, C.FAILED) is None
    assert s.completion_time == "2026-11-27T12:00:00Z" and s.succeeded == 1 and s.active == 0
    assert d.delete_cluster and d.release and d.start_attempt is None
    assert "Completed" in reasons(d)


def test_a_referenced_cluster_is_never_deleted_when_the_job_completes() -> None:
    shared = replace(READY, name="shared", owned=False)
    d = decide(
        view(status=started(attempts=1), cluster=shared, attempts=(attempt(1, exit_code=0),))
    )
    assert d.status.finished and not d.delete_cluster and d.release


def test_a_failed_attempt_waits_the_backoff_then_the_next_starts() -> None:
    one = (attempt(1, exit_code=1, ago=3),)
    d = decide(view(status=started(attempts=1), attempts=one))
    assert d.start_attempt is None and d.requeue_after == pytest.approx(7.0)
    assert d.status.failed == 1 and d.status.phase is JobPhase.RUNNING and not d.status.finished
    assert reasons(d) == ["RunnerFailed"]
    assert "exit code 1" in d.events[0].message and "retrying in 10 s" in d.events[0].message
    assert condition(d, C.RECONCILING) == ("True", "BackoffWait")
    # The next step sees the same failure: no second Event for it.
    again = decide(view(status=d.status, attempts=one, now=NOW + timedelta(seconds=5)))
    assert again.start_attempt is None and reasons(again) == []
    due = decide(view(status=again.status, attempts=one, now=NOW + timedelta(seconds=7)))
    assert due.start_attempt == 2 and reasons(due) == []


def test_each_further_failure_doubles_the_backoff() -> None:
    two = (attempt(1, exit_code=1, ago=60), attempt(2, exit_code=1, ago=19))
    d = decide(view(status=started(attempts=2, failed=1), attempts=two))
    assert d.start_attempt is None and d.requeue_after == pytest.approx(1.0)  # 20 s - 19 s
    assert d.status.failed == 2 and reasons(d) == ["RunnerFailed"]
    assert "retrying in 20 s" in d.events[0].message
    later = decide(view(status=d.status, attempts=two, now=NOW + timedelta(seconds=1)))
    assert later.start_attempt == 3 and later.status.attempts == 3


def test_the_backoff_is_capped_at_five_minutes() -> None:
    assert plan.backoff(20, 10.0) == plan.BACKOFF_CAP_SECONDS == 300.0


def test_failures_beyond_the_backoff_limit_fail_the_job_with_the_exit_code() -> None:
    two = (attempt(1, exit_code=1, ago=60), attempt(2, exit_code=3, ago=1))
    d = decide(view(spec(backoffLimit=1), started(attempts=2, failed=1), attempts=two))
    s = d.status
    assert s.phase is JobPhase.FAILED and s.finished and d.start_attempt is None
    assert condition(d, C.FAILED) == ("True", "BackoffLimitExceeded")
    assert condition(d, C.STALLED) == ("True", "BackoffLimitExceeded")
    assert condition(d, C.READY) == ("False", "BackoffLimitExceeded")
    assert condition(d, C.COMPLETE) is None
    assert "exit code 3" in (s.message or "") and "backoffLimit 1" in (s.message or "")
    assert s.failed == 2 and s.completion_time and d.delete_cluster and d.release
    assert "BackoffLimitExceeded" in reasons(d)


def test_backoff_limit_0_fails_on_the_first_failure() -> None:
    d = decide(view(spec(backoffLimit=0), started(attempts=1), attempts=(attempt(1, exit_code=2),)))
    assert condition(d, C.FAILED) == ("True", "BackoffLimitExceeded")


def test_the_deadline_fails_the_job_and_stops_its_runner() -> None:
    status = started(attempts=1, start_time="2026-11-27T11:58:00Z")
    live = (attempt(1),)
    before = decide(view(spec(activeDeadlineSeconds=121), status, attempts=live))
    assert not before.status.finished and before.stop == []
    d = decide(view(spec(activeDeadlineSeconds=120), status, attempts=live))
    assert d.status.phase is JobPhase.FAILED and d.status.active == 0
    assert condition(d, C.FAILED) == ("True", "DeadlineExceeded")
    assert "activeDeadlineSeconds (120 s)" in (d.status.message or "")
    assert d.stop == [live[0].arn] and d.stop_reason == plan.DEADLINE_REASON
    assert d.start_attempt is None and d.delete_cluster


def test_a_job_past_its_deadline_starts_no_attempt_during_a_backoff() -> None:
    status = started(attempts=1, start_time="2026-11-27T11:00:00Z")
    d = decide(view(spec(activeDeadlineSeconds=60), status, attempts=(attempt(1, exit_code=1),)))
    assert condition(d, C.FAILED) == ("True", "DeadlineExceeded") and d.start_attempt is None


def finished_job(ttl: int | None = None) -> tuple[DaskAwsJobSpec, JobStatus]:
    job = spec(ttlSecondsAfterFinished=ttl) if ttl is not None else spec()
    done = decide(view(job, started(attempts=1), attempts=(attempt(1, exit_code=0, ago=5),)))
    done.status.aws = done.status.aws.model_copy(update={"released": True})
    return job, done.status


def test_a_finished_jobs_status_never_changes() -> None:
    job, status = finished_job()
    late = (attempt(1, exit_code=0, ago=5), attempt(2, exit_code=1, ago=1))
    gone = ClusterView(name=OWN, owned=True)
    d = decide(view(job, status, attempts=late, cluster=gone, now=NOW + timedelta(hours=1)))
    assert d.status.conditions == status.conditions
    assert d.status.phase is JobPhase.SUCCEEDED and d.status.message == status.message
    assert d.status.failed == 0 and d.status.attempts == 1
    assert d.status.completion_time == status.completion_time
    assert d.events == [] and d.start_attempt is None and not d.create_cluster


def test_a_finished_job_stops_what_still_runs_and_deletes_its_cluster() -> None:
    job, status = finished_job()
    d = decide(view(job, status, attempts=(attempt(2),)))
    assert d.stop == [attempt(2).arn] and d.delete_cluster
    assert d.status.conditions == status.conditions


def test_a_finished_job_deletes_itself_once_its_ttl_has_passed() -> None:
    job, status = finished_job(ttl=100)
    gone = ClusterView(name=OWN, owned=True)
    waiting = decide(view(job, status, cluster=gone, now=NOW + timedelta(seconds=40)))
    assert not waiting.delete_job and waiting.requeue_after == pytest.approx(60.0)
    due = decide(view(job, status, cluster=gone, now=NOW + timedelta(seconds=100)))
    assert due.delete_job and due.status.conditions == status.conditions


def test_a_finished_job_without_ttl_is_kept() -> None:
    job, status = finished_job()
    gone = ClusterView(name=OWN, owned=True)
    d = decide(view(job, status, cluster=gone, now=NOW + timedelta(days=365)))
    assert not d.delete_job and d.requeue_after is None


def test_suspend_stops_the_runner_deletes_the_own_cluster_and_clears_start_time() -> None:
    status = started(attempts=1)
    d = decide(view(spec(suspend=True), status, attempts=(attempt(1),)))
    s = d.status
    assert d.stop == [attempt(1).arn] and d.stop_reason == plan.SUSPEND_REASON
    assert d.delete_cluster and d.start_attempt is None and not d.create_cluster
    assert s.start_time is None and s.phase is JobPhase.SUSPENDED and s.active == 0
    assert condition(d, C.SUSPENDED) == ("True", "JobSuspended") and not s.finished
    assert reasons(d) == ["Suspended"]


def test_a_suspended_referenced_cluster_is_left_alone() -> None:
    shared = replace(READY, name="shared", owned=False)
    d = decide(
        view(spec(suspend=True), started(attempts=1), cluster=shared, attempts=(attempt(1),))
    )
    assert not d.delete_cluster and d.stop == [attempt(1).arn]


def test_an_attempt_stopped_by_suspend_is_not_a_failure_after_resuming() -> None:
    suspended = decide(view(spec(suspend=True), started(attempts=1), attempts=(attempt(1),)))
    stopped = attempt(1, exit_code=143, ago=30, stopped_reason=plan.SUSPEND_REASON)
    stopped = replace(stopped, stop_code="UserInitiated")
    while_suspended = decide(view(spec(suspend=True), suspended.status, attempts=(stopped,)))
    assert while_suspended.status.failed == 0 and "RunnerFailed" not in reasons(while_suspended)
    resumed = decide(view(spec(), while_suspended.status, attempts=(stopped,)))
    s = resumed.status
    assert s.failed == 0 and not s.finished and "RunnerFailed" not in reasons(resumed)
    assert "Resumed" in reasons(resumed) and condition(resumed, C.SUSPENDED) == (
        "False",
        "JobResumed",
    )
    assert s.start_time == "2026-11-27T12:00:00Z"
    # No backoff: the next attempt starts at once, numbered after the stopped one.
    assert resumed.start_attempt == 2 and s.attempts == 2


def test_resuming_with_backoff_limit_0_does_not_fail_the_job() -> None:
    stopped = attempt(1, exit_code=137, ago=30, stopped_reason=plan.SUSPEND_REASON)
    status = decide(view(spec(suspend=True), started(attempts=1), attempts=(stopped,))).status
    d = decide(view(spec(backoffLimit=0), status, attempts=(stopped,)))
    assert not d.status.finished and d.start_attempt == 2


def test_resuming_restarts_the_deadline_clock() -> None:
    long_ago = started(attempts=1, start_time="2026-11-27T10:00:00Z")
    status = decide(view(spec(suspend=True, activeDeadlineSeconds=60), long_ago)).status
    d = decide(view(spec(activeDeadlineSeconds=60), status))
    assert not d.status.finished and d.status.start_time == "2026-11-27T12:00:00Z"


def test_an_attempt_stopped_by_suspend_that_exits_0_does_not_complete_the_job() -> None:
    stopped = attempt(1, exit_code=0, ago=30, stopped_reason=plan.SUSPEND_REASON)
    stopped = replace(stopped, stop_code="UserInitiated")
    status = decide(view(spec(suspend=True), started(attempts=1), attempts=(stopped,))).status
    d = decide(view(spec(), status, attempts=(stopped,)))
    assert not d.status.finished and d.start_attempt == 2


def test_an_attempt_ecs_knows_but_the_status_lost_is_counted() -> None:
    """The operator died between RunTask and the status write."""
    lost = started(attempts=0)
    d = decide(view(status=lost, attempts=(attempt(1),)))
    assert d.start_attempt is None and d.status.attempts == 1 and d.status.active == 1
    assert d.status.phase is JobPhase.RUNNING and "RunnerStarted" in reasons(d)


def test_numbering_continues_after_the_highest_attempt_ecs_knows() -> None:
    lost = started(attempts=1)
    failed = (attempt(1, exit_code=1, ago=100), attempt(2, exit_code=1, ago=100))
    d = decide(view(status=lost, attempts=failed))
    assert d.status.failed == 2 and d.start_attempt == 3 and d.status.attempts == 3


def test_failures_ecs_forgot_still_count() -> None:
    """ECS lists stopped tasks for an hour or so; the status remembers them."""
    d = decide(view(spec(backoffLimit=2), started(attempts=3, failed=3)))
    assert condition(d, C.FAILED) == ("True", "BackoffLimitExceeded")


def test_an_attempt_just_started_that_ecs_does_not_list_yet_is_not_started_again() -> None:
    one = (attempt(1, exit_code=1, ago=60),)
    first = decide(view(status=started(attempts=1), attempts=one))
    assert first.start_attempt == 2
    first.status.runner = first.status.runner.model_copy(
        update={"task_arn": "arn:aws:ecs:eu-west-1:123456789012:task/dask-etl/t2"}
    )
    d = decide(view(status=first.status, attempts=one, now=NOW + timedelta(seconds=2)))
    assert d.start_attempt is None and reasons(d) == []
    assert d.status.phase is JobPhase.RUNNING and d.status.runner.attempt == 2


def test_an_attempt_ecs_never_reports_is_given_up_after_the_grace() -> None:
    one = (attempt(1, exit_code=1, ago=60),)
    first = decide(view(status=started(attempts=1), attempts=one))
    first.status.runner = first.status.runner.model_copy(
        update={"task_arn": "arn:aws:ecs:eu-west-1:123456789012:task/dask-etl/t2"}
    )
    later = NOW + timedelta(seconds=plan.UNREPORTED_GRACE_SECONDS + 1)
    d = decide(view(status=first.status, attempts=one, now=later))
    assert d.start_attempt == 3


def test_an_own_cluster_over_quota_is_waited_for() -> None:
    quota = ("QuotaExceeded", "the namespace's DaskAwsPolicy allows 2 clusters")
    over = replace(READY, ready=False, address=None, stalled=quota)
    d = decide(view(cluster=over, identity=None))
    assert not d.status.finished and d.status.phase is JobPhase.PENDING
    assert "QuotaExceeded" in (d.status.message or "") and not d.delete_cluster


def test_an_own_cluster_stalled_for_another_reason_fails_the_job() -> None:
    broken = replace(READY, ready=False, address=None, stalled=("AccessDenied", "no ecs:*"))
    d = decide(view(cluster=broken, identity=None))
    assert condition(d, C.FAILED) == ("True", "ClusterFailed")
    assert "AccessDenied" in (d.status.message or "") and OWN in (d.status.message or "")
    assert d.delete_cluster


def test_a_referenced_stalled_cluster_is_waited_for_not_failed() -> None:
    shared = ClusterView(name="shared", owned=False, exists=True, stalled=("AccessDenied", "x"))
    d = decide(view(cluster=shared, identity=None))
    assert not d.status.finished and d.status.phase is JobPhase.PENDING


def test_a_foreign_cluster_of_the_same_name_fails_the_job_and_is_left_alone() -> None:
    foreign = replace(READY, foreign=True)
    d = decide(view(cluster=foreign, identity=None))
    assert condition(d, C.FAILED) == ("True", "ClusterFailed")
    assert "not made for this job" in (d.status.message or "")
    assert not d.delete_cluster and not d.create_cluster


def test_an_invalid_runner_fails_the_job_with_the_given_reason() -> None:
    why = ("ImageNotAllowed", "runner.image evil:latest is not allowed")
    d = decide(view(invalid=why))
    assert condition(d, C.FAILED) == ("True", "ImageNotAllowed")
    assert d.status.message == why[1] and d.start_attempt is None
    assert [e.type for e in d.events if e.reason == "ImageNotAllowed"] == ["Warning"]
