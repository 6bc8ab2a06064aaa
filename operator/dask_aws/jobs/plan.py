"""What one step of a DaskAwsJob does: a pure function of what was observed.

The order of the checks is the promise: a finished job only cleans up (its terminal status
never changes); a suspended one stops everything; then success, the deadline and the retry
budget are judged before anything new starts, so a job past its deadline never starts
another attempt. Attempts are counted from ECS (the runner tasks carry their attempt number
in their task group) as well as from the status, so an operator killed between RunTask and
the status write finds the attempt it started instead of starting a second one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dask_aws.engine.events import Event
from dask_aws.jobs.spec import DaskAwsJobSpec
from dask_aws.jobs.status import (
    JobCondition,
    JobConditionType,
    JobPhase,
    JobStatus,
    RunnerStatus,
)
from dask_aws.status import parse_time, set_condition, time_text

# A stop dask-aws asked for when suspending: such an attempt is not a failure.
SUSPEND_REASON = "Stopped by dask-aws: the DaskAwsJob was suspended."
DEADLINE_REASON = "Stopped by dask-aws: the DaskAwsJob exceeded activeDeadlineSeconds."
FINISHED_REASON = "Stopped by dask-aws: the DaskAwsJob finished or was deleted."
BACKOFF_CAP_SECONDS = 300.0
POLL_SECONDS = 5.0  # a running runner is read this often
STARTING_SECONDS = 2.0  # while the cluster starts
UNREPORTED_GRACE_SECONDS = 120.0  # how long an attempt just started may go unreported by ECS
LOG_STREAM_PREFIX = "job"  # awslogs-stream-prefix: streams are job/dask-runner/<task id>
RUNNER_CONTAINER = "dask-runner"
# A cluster Stalled for this reason waits for room in the namespace's quota, as a Job's
# pods wait for a ResourceQuota; any other Stalled reason fails a job's own cluster.
QUOTA_EXCEEDED = "QuotaExceeded"


@dataclass(frozen=True)
class Attempt:
    """One runner task, as ECS reports it."""

    number: int
    arn: str
    live: bool
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    @property
    def succeeded(self) -> bool:
        # A program that exits 0 on the SIGTERM of a suspension did not finish its work.
        return not self.live and self.exit_code == 0 and not self.suspended

    @property
    def suspended(self) -> bool:
        return not self.live and (self.stopped_reason or "").startswith(SUSPEND_REASON)

    @property
    def failed(self) -> bool:
        return not self.live and not self.succeeded and not self.suspended

    def describe(self) -> str:
        """How it ended, for people: "exit code 1 (EssentialContainerExited)"."""
        code = f"exit code {self.exit_code}" if self.exit_code is not None else "no exit code"
        why = self.stop_code or ""
        if self.stopped_reason and self.exit_code is None:
            why = f"{why}: {self.stopped_reason}" if why else self.stopped_reason
        return f"{code} ({why})" if why else code


@dataclass(frozen=True)
class ClusterView:
    """The DaskAwsCluster the job uses, as the operator's watch last saw it."""

    name: str
    owned: bool
    exists: bool = False
    deleting: bool = False
    foreign: bool = False  # an object of that name the job did not create
    ready: bool = False
    address: str | None = None
    stalled: tuple[str, str] | None = None  # (reason, message) of a True Stalled condition


@dataclass(frozen=True)
class Identity:
    """Where the cluster lives, so the runner goes next to it."""

    region: str
    cluster_arn: str
    role_arn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class JobView:
    spec: DaskAwsJobSpec
    status: JobStatus
    generation: int | None
    now: datetime
    cluster: ClusterView
    attempts: tuple[Attempt, ...] = ()
    identity: Identity | None = None  # known once the cluster is Ready
    backoff_seconds: float = 10.0
    log_group: str | None = None
    # Set by the controller when the runner may not run on this cluster (a size Fargate
    # does not offer, an image or role an allowlist forbids); checked before attempt 1.
    invalid: tuple[str, str] | None = None  # (reason, message)


@dataclass
class Decision:
    status: JobStatus
    events: list[Event] = field(default_factory=list)
    create_cluster: bool = False
    delete_cluster: bool = False
    stop: list[str] = field(default_factory=list)  # runner task ARNs
    stop_reason: str = FINISHED_REASON
    start_attempt: int | None = None
    release: bool = False  # delete the runner's task definition and execution role
    delete_job: bool = False
    requeue_after: float | None = None


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


def backoff(failed: int, base: float) -> float:
    """How long the retry after the `failed`-th failure waits: base, 2 base, 4 base..."""
    return float(min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, failed - 1)))


def _with_unreported(view: JobView) -> JobView:
    """The attempt this operator started (its ARN is in the status) that ECS does not report
    yet, counted as live for a while: ListTasks and DescribeTasks are eventually consistent,
    and reading "no attempt runs" from them would start a second one beside it."""
    runner = view.status.runner
    started = parse_time(runner.started_at)
    if (
        not runner.task_arn
        or runner.finished_at
        or started is None
        or any(a.number >= runner.attempt for a in view.attempts)
        or _naive(view.now) - started > timedelta(seconds=UNREPORTED_GRACE_SECONDS)
    ):
        return view
    assumed = Attempt(number=runner.attempt, arn=runner.task_arn, live=True, started_at=started)
    return replace(view, attempts=(*view.attempts, assumed))


def decide(view: JobView) -> Decision:
    view = _with_unreported(view)
    status = view.status.model_copy(deep=True, update={"observed_generation": view.generation})
    if view.status.finished:
        return _finished(view, status)
    if view.spec.suspend:
        return _suspended(view, status)
    decision = Decision(status)
    if status.is_(JobConditionType.SUSPENDED):
        decision.events.append(Event("Normal", "Resumed", "The job was resumed."))
        _condition(status, JobConditionType.SUSPENDED, False, "JobResumed", "", view.generation)
        status.start_time = None
    if status.start_time is None:
        status.start_time = time_text(view.now)
    _count(view, status, decision)
    live = [a for a in view.attempts if a.live]
    latest = max(view.attempts, key=lambda a: a.number, default=None)
    cluster = view.cluster
    if latest is not None and latest.succeeded:
        message = f"The runner exited 0 (attempt {latest.number})."
        return _end(view, decision, True, "Completed", message)
    if view.invalid:
        return _end(view, decision, False, *view.invalid)
    started = parse_time(status.start_time) or _naive(view.now)
    deadline = view.spec.active_deadline_seconds
    if deadline is not None and _naive(view.now) >= started + timedelta(seconds=deadline):
        message = f"The job was active longer than activeDeadlineSeconds ({deadline} s)" + (
            ": its runner was stopped." if live else "."
        )
        decision.stop_reason = DEADLINE_REASON
        return _end(view, decision, False, "DeadlineExceeded", message)
    if status.failed > view.spec.backoff_limit:
        last = f"attempt {latest.number} ended with {latest.describe()}" if latest else ""
        message = (
            f"The runner failed {status.failed} times, more than backoffLimit "
            f"{view.spec.backoff_limit}: {last}."
        )
        return _end(view, decision, False, "BackoffLimitExceeded", message)
    if cluster.foreign:
        message = f"A DaskAwsCluster named {cluster.name} exists and was not made for this job."
        return _end(view, decision, False, "ClusterFailed", message)
    if live:
        return _running(view, decision, live[-1])
    if cluster.stalled and (not cluster.owned or cluster.stalled[0] != QUOTA_EXCEEDED):
        reason, text = cluster.stalled
        if cluster.owned:
            message = f"The job's DaskAwsCluster {cluster.name} is Stalled ({reason}): {text}"
            return _end(view, decision, False, "ClusterFailed", message)
    if not cluster.exists or cluster.deleting:
        if cluster.owned and not cluster.exists:
            decision.create_cluster = True
            wait = f"Creating DaskAwsCluster {cluster.name} for this job."
        elif cluster.owned:
            wait = f"Waiting for the old DaskAwsCluster {cluster.name} to be deleted."
        else:
            wait = f"Waiting for DaskAwsCluster {cluster.name} to exist in this namespace."
        return _pending(view, decision, "ClusterNotFound", wait)
    if not cluster.ready or not cluster.address or view.identity is None:
        why = f": {cluster.stalled[0]}: {cluster.stalled[1]}" if cluster.stalled else "."
        return _pending(
            view,
            decision,
            "ClusterStarting",
            f"Waiting for DaskAwsCluster {cluster.name} to be Ready{why}",
        )
    status.cluster = status.cluster.model_copy(update={"scheduler_address": cluster.address})
    identity = view.identity
    if status.aws.region is None:
        # Written before anything is created, so a deletion knows where to look.
        status.aws = status.aws.model_copy(
            update={
                "region": identity.region,
                "cluster_arn": identity.cluster_arn,
                "role_arn": identity.role_arn,
                "external_id": identity.external_id,
            }
        )
        decision.requeue_after = 0.0
        return _pending(view, decision, "ClusterReady", f"DaskAwsCluster {cluster.name} is Ready.")
    if latest is not None and latest.failed and latest.stopped_at is not None:
        pause = backoff(status.failed, view.backoff_seconds)
        due = _naive(latest.stopped_at) + timedelta(seconds=pause)
        if _naive(view.now) < due:
            left = (due - _naive(view.now)).total_seconds()
            status.phase = JobPhase.RUNNING
            status.message = (
                f"Runner attempt {latest.number} ended with {latest.describe()}; attempt "
                f"{latest.number + 1} starts in {left:.0f} s."
            )
            _progressing(status, view.generation, "BackoffWait", status.message)
            decision.requeue_after = left
            return decision
    number = max(status.attempts, latest.number if latest else 0) + 1
    decision.start_attempt = number
    status.attempts = number
    status.active = 1
    status.phase = JobPhase.RUNNING
    status.runner = RunnerStatus(
        attempt=number, log_group=view.log_group, started_at=time_text(view.now)
    )
    status.message = f"Starting runner attempt {number} on DaskAwsCluster {cluster.name}."
    _progressing(status, view.generation, "RunnerStarting", status.message)
    decision.requeue_after = STARTING_SECONDS
    return decision


def _count(view: JobView, status: JobStatus, decision: Decision) -> None:
    """attempts, failed, active and runner from ECS, never below what the status says:
    ECS forgets stopped tasks after an hour or so."""
    status.failed = max(status.failed, sum(1 for a in view.attempts if a.failed))
    status.active = sum(1 for a in view.attempts if a.live)
    latest = max(view.attempts, key=lambda a: a.number, default=None)
    if latest is None:
        return
    status.attempts = max(status.attempts, latest.number)
    status.succeeded = 1 if latest.succeeded else 0
    status.runner = RunnerStatus(
        attempt=latest.number,
        task_arn=latest.arn,
        started_at=time_text(latest.started_at),
        finished_at=time_text(latest.stopped_at),
        exit_code=latest.exit_code,
        stop_code=latest.stop_code,
        stopped_reason=latest.stopped_reason,
        log_group=view.log_group,
        log_stream=f"{LOG_STREAM_PREFIX}/{RUNNER_CONTAINER}/{latest.id}",
    )
    seen_end = view.status.runner.attempt == latest.number and view.status.runner.finished_at
    if latest.failed and not seen_end:
        # One Event per failed attempt, the step that first sees it end: `kubectl describe`
        # then tells the whole story.
        then = ""
        if status.failed <= view.spec.backoff_limit:
            then = f"; retrying in {backoff(status.failed, view.backoff_seconds):.0f} s"
        text = f"Runner attempt {latest.number} ended with {latest.describe()}{then}."
        decision.events.append(Event("Warning", "RunnerFailed", text))


def _condition(
    status: JobStatus,
    type_: JobConditionType,
    value: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> None:
    status.conditions = set_condition(
        status.conditions, type_, value, reason, message, generation, model=JobCondition
    )


def _progressing(status: JobStatus, generation: int | None, reason: str, message: str) -> None:
    """kstatus while the job is on its way: Reconciling, neither Ready nor Stalled."""
    _condition(status, JobConditionType.RECONCILING, True, reason, message, generation)
    _condition(status, JobConditionType.READY, False, reason, message, generation)
    _condition(status, JobConditionType.STALLED, False, reason, "", generation)


def _pending(view: JobView, decision: Decision, reason: str, message: str) -> Decision:
    status = decision.status
    status.phase = JobPhase.PENDING
    status.message = message
    status.cluster = status.cluster.model_copy(
        update={"name": view.cluster.name, "owned": view.cluster.owned}
    )
    if decision.create_cluster:
        text = f"Creating DaskAwsCluster {view.cluster.name} for this job."
        decision.events.append(Event("Normal", "ClusterCreated", text))
    _progressing(status, view.generation, reason, message)
    if decision.requeue_after is None:
        decision.requeue_after = STARTING_SECONDS
    return decision


def _running(view: JobView, decision: Decision, attempt: Attempt) -> Decision:
    status = decision.status
    status.phase = JobPhase.RUNNING
    status.message = f"Runner attempt {attempt.number} is running (task {attempt.id})."
    if view.status.runner.task_arn != attempt.arn:
        decision.events.append(
            Event(
                "Normal",
                "RunnerStarted",
                f"Started runner attempt {attempt.number} (task {attempt.id}) on "
                f"DaskAwsCluster {view.cluster.name}.",
            )
        )
    _progressing(status, view.generation, "RunnerRunning", status.message)
    decision.requeue_after = POLL_SECONDS
    return decision


def _end(
    view: JobView,
    decision: Decision,
    complete: bool,
    reason: str,
    message: str,
) -> Decision:
    """The one terminal write: conditions, completionTime, an Event; then the clean-up."""
    status, generation = decision.status, view.generation
    status.phase = JobPhase.SUCCEEDED if complete else JobPhase.FAILED
    status.message = message
    status.completion_time = time_text(view.now)
    status.active = 0
    status.cluster = status.cluster.model_copy(
        update={"name": view.cluster.name, "owned": view.cluster.owned}
    )
    kind = JobConditionType.COMPLETE if complete else JobConditionType.FAILED
    _condition(status, kind, True, reason, message, generation)
    _condition(status, JobConditionType.READY, complete, reason, message, generation)
    _condition(status, JobConditionType.RECONCILING, False, reason, "", generation)
    _condition(status, JobConditionType.STALLED, not complete, reason, message, generation)
    decision.events.append(Event("Normal" if complete else "Warning", reason, message))
    return _clean_up(view, decision)


def _finished(view: JobView, status: JobStatus) -> Decision:
    decision = Decision(status)
    status.active = 0
    _clean_up(view, decision)
    ttl = view.spec.ttl_seconds_after_finished
    finished = parse_time(status.completion_time)
    if ttl is not None and finished is not None:
        left = (finished + timedelta(seconds=ttl) - _naive(view.now)).total_seconds()
        if left <= 0:
            decision.delete_job = True
        else:
            decision.requeue_after = (
                left if decision.requeue_after is None else min(left, decision.requeue_after)
            )
    return decision


def _clean_up(view: JobView, decision: Decision) -> Decision:
    """Stop what still runs, delete the job's own cluster, release the runner's definition
    and execution role: again each step until done (a failed call is retried)."""
    cluster = view.cluster
    decision.stop = [a.arn for a in view.attempts if a.live]
    if cluster.owned and cluster.exists and not cluster.deleting and not cluster.foreign:
        decision.delete_cluster = True
        text = f"Deleting DaskAwsCluster {cluster.name}: the job no longer needs it."
        decision.events.append(Event("Normal", "ClusterDeleted", text))
    if not decision.status.aws.released and decision.status.aws.region is not None:
        decision.release = True
    if (cluster.owned and cluster.exists) or decision.stop:
        decision.requeue_after = STARTING_SECONDS
    return decision


def _suspended(view: JobView, status: JobStatus) -> Decision:
    decision = Decision(status, stop_reason=SUSPEND_REASON)
    _count(view, status, decision)
    if not status.is_(JobConditionType.SUSPENDED):
        decision.events.append(
            Event("Normal", "Suspended", "The job was suspended: its runner and cluster stop.")
        )
    message = "The job is suspended (spec.suspend)."
    _condition(status, JobConditionType.SUSPENDED, True, "JobSuspended", message, view.generation)
    _progressing(status, view.generation, "JobSuspended", message)
    status.phase = JobPhase.SUSPENDED
    status.message = message
    status.start_time = None  # resuming starts the activeDeadlineSeconds clock again
    status.active = 0
    decision.stop = [a.arn for a in view.attempts if a.live]
    cluster = view.cluster
    if cluster.owned and cluster.exists and not cluster.deleting and not cluster.foreign:
        decision.delete_cluster = True
    if decision.stop or decision.delete_cluster:
        decision.requeue_after = STARTING_SECONDS
    return decision
