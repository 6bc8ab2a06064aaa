"""One operator step for one DaskAwsJob: observe, decide (jobs/plan.py), act, status.

The job's cluster is a DaskAwsCluster object (made by the job, or the one it names), so
everything a cluster does (tenancy, guardrails, TLS, deletion) holds for a job's cluster
too, and the cluster reconciler is the only code that touches a cluster's AWS resources.
The job's own AWS resources are few: the runner's log group (kept until the job object is
deleted, so its output outlives the cluster), execution role and task definition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from dask_aws.aws import iam_roles, log_group, network, runner
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Target
from dask_aws.aws.task_definitions import Refs
from dask_aws.controller import accounts, guardrails, kube, metrics, step, tenancy
from dask_aws.controller.config import OperatorConfig
from dask_aws.controller.fit import cut
from dask_aws.controller.state import memo_state
from dask_aws.controller.step import StepOutput
from dask_aws.engine.events import Event
from dask_aws.errors import DaskAwsError, PermanentError, from_botocore
from dask_aws.jobs import plan
from dask_aws.jobs.spec import DaskAwsJobSpec, runner_size_error
from dask_aws.jobs.status import JobStatus
from dask_aws.names import Owner, ResourceNames
from dask_aws.spec import DaskAwsClusterSpec, IamSpec, LaunchType, LogsSpec
from dask_aws.status import ClusterStatus, ConditionType
from dask_aws.tenancy.merge import Effective

logger = logging.getLogger("dask_aws.operator")
KIND = "DaskAwsJob"
ERROR_BACKOFF_SECONDS = 10.0
IDLE_SECONDS = 60.0  # a finished job with nothing left to do looks again this rarely


@dataclass
class JobState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_run: float = 0.0
    last_generation: int | None = None
    deleted: bool = False


def state_of(memo: Any) -> JobState:
    return memo_state(memo, "dask_aws_job_state", JobState)


@dataclass(frozen=True)
class ClusterEntry:
    """A DaskAwsCluster as kopf's index holds it."""

    uid: str
    spec: dict[str, Any]
    status: dict[str, Any]
    deleting: bool
    owners: tuple[str, ...]  # uids of its ownerReferences


Clusters = Mapping[tuple[str, str], ClusterEntry]


def job_owner(meta: Any) -> Owner:
    return Owner(uid=meta["uid"], name=meta["name"], namespace=meta.get("namespace"), kind=KIND)


def child_name(meta: Any) -> str:
    """The job's own cluster: <job>-<8 hex of its uid>, so a job deleted and applied again
    under the same name gets a new cluster, never the one still being deleted."""
    owner = job_owner(meta)
    return f"{owner.name[: 253 - 9].rstrip('-.')}-{owner.suffix}"


def _cluster_name(spec: DaskAwsJobSpec, meta: Any) -> str:
    return spec.cluster.name or child_name(meta)


def _view_of(spec: DaskAwsJobSpec, meta: Any, entry: ClusterEntry | None) -> plan.ClusterView:
    owned = spec.cluster.name is None
    name = _cluster_name(spec, meta)
    if entry is None:
        return plan.ClusterView(name=name, owned=owned)
    status = ClusterStatus.lenient(entry.status)
    stalled = status.condition(ConditionType.STALLED)
    return plan.ClusterView(
        name=name,
        owned=owned,
        exists=True,
        deleting=entry.deleting,
        foreign=owned and meta["uid"] not in entry.owners,
        ready=status.ready,
        address=status.scheduler_address,
        stalled=(stalled.reason, stalled.message)
        if stalled is not None and stalled.status == "True"
        else None,
    )


def _identity(entry: ClusterEntry | None) -> plan.Identity | None:
    if entry is None:
        return None
    aws = ClusterStatus.lenient(entry.status).aws
    if not aws.cluster_arn:
        return None
    return plan.Identity(
        region=aws.cluster_arn.split(":")[3],
        cluster_arn=aws.cluster_arn,
        role_arn=aws.role_arn,
        external_id=aws.external_id,
    )


def parse_job(raw: Any) -> DaskAwsJobSpec:
    return step.parse(DaskAwsJobSpec, raw)


def _aws(recorded: Any, config: OperatorConfig) -> Aws:
    return accounts.aws_for(recorded.region, config, recorded.role_arn, recorded.external_id)


def _cluster_spec(entry: ClusterEntry, policy: Effective) -> DaskAwsClusterSpec:
    """The cluster's spec as its reconciler sees it: with the namespace's policy defaults."""
    return DaskAwsClusterSpec.model_validate(tenancy.with_defaults(entry.spec, policy))


def _problem(
    spec: DaskAwsJobSpec,
    entry: ClusterEntry | None,
    config: OperatorConfig,
    view: tenancy.Namespace,
) -> tuple[str, str] | None:
    """What forbids this runner on this cluster: the operator's and the namespace's
    allowlists (the runner runs code with a role, as a worker does), Fargate's sizes."""
    if entry is None:
        return None
    try:
        policy = tenancy.effective(view)
        cluster = _cluster_spec(entry, policy)
    except (ValidationError, DaskAwsError):
        return None  # the cluster's own status says what is wrong with it
    r = spec.runner
    if cluster.launch_type is LaunchType.FARGATE and runner_size_error(r):
        return "InvalidSpec", f"runner: {runner_size_error(r)}"
    probe = DaskAwsClusterSpec(
        image=r.image or cluster.image, iam=IamSpec(task_role_arn=r.task_role_arn)
    )
    try:
        guardrails.check(probe, config)
        tenancy.check(probe, policy)
    except DaskAwsError as exc:
        text = exc.message.replace("iam.taskRoleArn", "runner.taskRoleArn")
        return exc.reason, text.replace("image ", "runner.image ", 1) if r.image else text
    return None


def reconcile_job(
    body: Any,
    config: OperatorConfig,
    state: JobState,
    clusters: Clusters,
    view: tenancy.Namespace,
    *,
    force: bool = False,
) -> StepOutput:
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return StepOutput()
    if not state.lock.acquire(blocking=force):
        return StepOutput()
    try:
        generation = meta.get("generation")
        now = time.monotonic()
        if not force and generation == state.last_generation and now < state.next_run:
            return StepOutput()
        state.last_generation = generation
        out, wait = _step(body, config, clusters, view)
        state.next_run = time.monotonic() + wait
        return out
    finally:
        state.lock.release()


def _step(
    body: Any, config: OperatorConfig, clusters: Clusters, view: tenancy.Namespace
) -> tuple[StepOutput, float]:
    meta = body["metadata"]
    previous = JobStatus.lenient(body.get("status"))
    try:
        spec = parse_job(body.get("spec"))
    except PermanentError as exc:
        return _refused(previous, meta, exc), IDLE_SECONDS
    namespace = meta.get("namespace") or ""
    entry = clusters.get((namespace, _cluster_name(spec, meta)))
    owner = job_owner(meta)
    names = ResourceNames.for_owner(owner)
    attempts: tuple[plan.Attempt, ...] = ()
    recorded = previous.aws
    try:
        if recorded.region and recorded.cluster_arn and not recorded.released:
            known = [previous.runner.task_arn] if previous.runner.task_arn else []
            attempts = runner.observe(_aws(recorded, config), owner, recorded.cluster_arn, known)
    except (ClientError, BotoCoreError, DaskAwsError) as exc:
        return _failed_step(meta, previous, exc, recorded.region)
    cview = _view_of(spec, meta, entry)
    decision = plan.decide(
        plan.JobView(
            spec=spec,
            status=previous,
            generation=meta.get("generation"),
            now=datetime.now(UTC),
            cluster=cview,
            attempts=attempts,
            identity=_identity(entry) if cview.ready else None,
            backoff_seconds=config.job_backoff_seconds,
            log_group=names.log_group,
            invalid=None if previous.attempts else _problem(spec, entry, config, view),
        )
    )
    try:
        _act(decision, body, spec, entry, config, view)
    except (ClientError, BotoCoreError, DaskAwsError) as exc:
        return _failed_step(meta, previous, exc, decision.status.aws.region)
    metrics.observe_job_phase(meta["uid"], decision.status.phase.value)
    status = decision.status.model_dump(mode="json", by_alias=True)
    out = StepOutput(status=status, events=decision.events)
    wait = IDLE_SECONDS if decision.requeue_after is None else decision.requeue_after
    return out, wait


def _refused(previous: JobStatus, meta: Any, error: PermanentError) -> StepOutput:
    """A spec the API server let through but this version cannot read (an older CRD)."""
    return StepOutput() if previous.finished else _report(previous, meta, error)


def _error(exc: ClientError | BotoCoreError | DaskAwsError, region: str | None) -> DaskAwsError:
    if isinstance(exc, DaskAwsError):
        return exc
    return from_botocore(exc, "the operator's IAM identity", region or "")


def _failed_step(
    meta: Any,
    previous: JobStatus,
    exc: ClientError | BotoCoreError | DaskAwsError,
    region: str | None,
) -> tuple[StepOutput, float]:
    error = _error(exc, region)
    return _report(previous, meta, error, f"{error.reason}: "), ERROR_BACKOFF_SECONDS


def _report(previous: JobStatus, meta: Any, error: DaskAwsError, prefix: str = "") -> StepOutput:
    """A step that could not go on: logged once, the last status kept with the error as its
    message, and a Warning Event."""
    _log(meta, error)
    status = previous.model_copy(update={"message": cut(prefix + error.message)})
    return StepOutput(
        status=status.model_dump(mode="json", by_alias=True),
        events=[Event("Warning", error.reason, error.message)],
    )


def _log(meta: Any, error: DaskAwsError) -> None:
    logger.warning(
        "%s/%s: %s: %s", meta.get("namespace"), meta["name"], error.reason, cut(error.message, 2048)
    )


def _act(
    decision: plan.Decision,
    body: Any,
    spec: DaskAwsJobSpec,
    entry: ClusterEntry | None,
    config: OperatorConfig,
    view: tenancy.Namespace,
) -> None:
    meta = body["metadata"]
    namespace = meta.get("namespace") or ""
    status = decision.status
    if decision.create_cluster:
        raw_cluster = (body.get("spec") or {}).get("cluster") or {}
        kube.create_job_cluster(namespace, child_name(meta), raw_cluster.get("spec") or {}, meta)
    if decision.delete_cluster:
        kube.delete_cluster_object(namespace, _cluster_name(spec, meta))
    aws = _aws(status.aws, config) if status.aws.region else None
    if decision.stop and aws is not None and status.aws.cluster_arn:
        runner.stop(aws, status.aws.cluster_arn, decision.stop, decision.stop_reason)
    if decision.start_attempt is not None and aws is not None and entry is not None:
        arn = _start(aws, decision.start_attempt, spec, entry, meta, view)
        status.runner = status.runner.model_copy(update={"task_arn": arn})
    if decision.release and aws is not None:
        release(aws, job_owner(meta))
        status.aws = status.aws.model_copy(update={"released": True})
    if decision.delete_job:
        kube.delete_job_object(namespace, meta["name"])


def _start(
    aws: Aws,
    attempt: int,
    spec: DaskAwsJobSpec,
    entry: ClusterEntry,
    meta: Any,
    view: tenancy.Namespace,
) -> str:
    """The runner's log group, execution role and task definition (each found again when
    they exist), then its task."""
    owner = job_owner(meta)
    cluster_spec = _cluster_spec(entry, tenancy.effective(view))
    cluster = ClusterStatus.lenient(entry.status)
    cluster_owner = Owner(uid=entry.uid, name=_cluster_name(spec, meta), namespace=owner.namespace)
    where = network.observe(aws, Target(cluster_owner, cluster_spec))
    own = _own(
        owner,
        DaskAwsClusterSpec(
            secrets=spec.runner.secrets,
            tags=cluster_spec.tags,
            logs=LogsSpec(retention_days=cluster_spec.logs.retention),
        ),
    )
    logs = log_group.ensure(aws, own)
    tls = cluster.aws.tls_secret_arn
    refs = Refs(execution_role_arn="", task_role_arn="", log_group="", region="", tls_secret=tls)
    execution = iam_roles.ensure(aws, own, "execution", refs)
    place = runner.Placement(
        cluster_arn=cluster.aws.cluster_arn or "",
        scheduler_address=cluster.scheduler_address or "",
        image=cluster_spec.image,
        launch_type=cluster_spec.launch_type.value,
        subnets=where.subnets,
        security_groups=tuple(
            cluster_spec.network.security_groups or [cluster.aws.security_group_id or ""]
        ),
        assign_public_ip=where.assign_public_ip,
        task_role_arn=spec.runner.task_role_arn or cluster.aws.task_role_arn or "",
        execution_role_arn=execution.id,
        log_group=logs.id,
        region=aws.region,
        tls_secret_arn=tls,
        platform_version=cluster_spec.platform_version,
    )
    registration = runner.desired(owner, spec.runner, place)
    definition = runner.ensure_definition(aws, owner, registration, cluster_spec.tags)
    return runner.run(aws, owner, attempt, definition, place, cluster_spec.tags)


def release(aws: Aws, owner: Owner) -> None:
    """The runner's task definition and execution role: nothing runs on them any more."""
    runner.delete_definition(aws, owner)
    role = iam_roles.observe(aws, _own(owner), "execution")
    if role is not None:
        iam_roles.delete(aws, role)


def _own(owner: Owner, spec: DaskAwsClusterSpec | None = None) -> Target:
    """The job's own resources as the cluster modules know them: the runner's secrets,
    the cluster's tags and log retention, the job's names."""
    return Target(owner, spec or DaskAwsClusterSpec())


@dataclass
class DeleteOutcome:
    done: bool
    message: str = ""


def delete_job(body: Any, config: OperatorConfig, clusters: Clusters) -> DeleteOutcome:
    """Stop the runner, delete the job's own cluster and wait until it is gone (its own
    finalizer removes its AWS resources), then the runner's resources and log group."""
    meta = body["metadata"]
    namespace = meta.get("namespace") or ""
    previous = JobStatus.lenient(body.get("status"))
    owner = job_owner(meta)
    try:
        spec: DaskAwsJobSpec | None = parse_job(body.get("spec"))
    except PermanentError:
        spec = None
    recorded = previous.aws
    try:
        aws = _aws(recorded, config) if recorded.region else None
        if aws is not None and recorded.cluster_arn:
            live = [a.arn for a in runner.observe(aws, owner, recorded.cluster_arn) if a.live]
            runner.stop(aws, recorded.cluster_arn, live, plan.FINISHED_REASON)
        owned_name = child_name(meta) if spec is None or spec.cluster.name is None else None
        entry = clusters.get((namespace, owned_name)) if owned_name else None
        if entry is not None and meta["uid"] in entry.owners:
            if not entry.deleting:
                kube.delete_cluster_object(namespace, owned_name or "")
            return DeleteOutcome(False, f"waiting for DaskAwsCluster {owned_name} to be deleted")
        if aws is not None:
            release(aws, owner)
            group = log_group.observe(aws, _own(owner))
            if group is not None:
                log_group.delete(aws, group)
    except (ClientError, BotoCoreError, DaskAwsError) as exc:
        error = _error(exc, recorded.region)
        return DeleteOutcome(False, f"{error.reason}: {error.message}")
    metrics.observe_job_phase(meta["uid"], None)
    return DeleteOutcome(True)
