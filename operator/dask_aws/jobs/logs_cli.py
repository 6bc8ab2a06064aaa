"""`dask-aws job logs NAME [-n NAMESPACE] [-f]`: a DaskAwsJob's runner output from
CloudWatch Logs, read with your own AWS credentials (the job's status names the log group,
stream and region; nothing is read through the operator)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

FOLLOW_SECONDS = 2.0


def register(subparsers: Any) -> None:
    job = subparsers.add_parser("job", help="DaskAwsJobs: read a job's runner output")
    commands = job.add_subparsers(dest="job_command", required=True)
    logs = commands.add_parser(
        "logs",
        help="print a DaskAwsJob's runner output (its latest attempt) from CloudWatch Logs",
        description=__doc__,
    )
    logs.add_argument("name", help="the DaskAwsJob's name")
    logs.add_argument("-n", "--namespace", help="its namespace (default: the kubeconfig context's)")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new output, attempt after attempt, until the job finished",
    )
    logs.set_defaults(func=_run)


def _current_namespace() -> str:
    from kubernetes import config

    try:
        _, context = config.list_kube_config_contexts()
        return str(context.get("context", {}).get("namespace") or "default")
    except (config.ConfigException, OSError):
        return "default"


def _job(namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from dask_aws.controller.kube import api_client
    from dask_aws.crd import GROUP, VERSION
    from dask_aws.jobs.crd import PLURAL

    try:
        found: dict[str, Any] = client.CustomObjectsApi(api_client()).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def _finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def _print_new(aws: Any, group: str, stream: str, token: str | None, out: TextIO) -> str | None:
    """Print the stream's events after `token`; return the token to go on from."""
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream}
        kwargs.update({"nextToken": token} if token else {"startFromHead": True})
        try:
            reply = aws.logs.get_log_events(**kwargs)
        except aws.logs.exceptions.ResourceNotFoundException:
            return token  # the runner has written nothing yet
        for event in reply["events"]:
            out.write(event["message"].rstrip("\n") + "\n")
        out.flush()
        following = reply.get("nextForwardToken")
        if not reply["events"] or following == token:
            return str(following) if following else token
        token = following


def _run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from dask_aws.aws.clients import connect

    namespace = args.namespace or _current_namespace()
    job = _job(namespace, args.name)
    if job is None:
        print(f"DaskAwsJob {namespace}/{args.name} not found", file=sys.stderr)
        return 1
    aws = None
    stream: str | None = None
    token: str | None = None
    while True:
        status = job.get("status") or {}
        runner, region = status.get("runner") or {}, (status.get("aws") or {}).get("region")
        if runner.get("logStream") and region:
            aws = aws or connect(region=region)
            if runner["logStream"] != stream:  # a new attempt: its stream from the start
                token = None
            stream = str(runner["logStream"])
            token = _print_new(aws, runner["logGroup"], stream, token, out)
        elif not args.follow:
            print(
                f"DaskAwsJob {namespace}/{args.name} has not started its runner yet",
                file=sys.stderr,
            )
            return 1
        if not args.follow or _finished(job):
            if args.follow and aws is not None and stream is not None:
                _print_new(aws, runner["logGroup"], stream, token, out)  # the last lines
            return 0
        time.sleep(FOLLOW_SECONDS)
        job = _job(namespace, args.name) or job
