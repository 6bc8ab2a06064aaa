"""`dask-aws operator`: run the operator in the foreground (wraps kopf's runner)."""

from __future__ import annotations

import argparse
import copy
import logging
from typing import Any

from dask_aws.controller.config import OperatorConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ObjectFormatter(logging.Formatter):
    """Puts namespace/name in front of kopf's per-object lines, which carry the object
    only as data (`k8s_ref`): without it "Handler 'delete' failed" names nothing."""

    def format(self, record: logging.LogRecord) -> str:
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            record = copy.copy(record)
            where = "/".join(str(p) for p in (ref.get("namespace"), ref["name"]) if p)
            record.msg = f"{where}: {record.msg}"
        return super().format(record)


#: kopf logs every handler run at INFO; these run on every 2 s tick of every object or on
#: every watch event, mostly to find that nothing is due: at 1,000 objects 30,000 lines a
#: minute that say nothing. Their failures, and everything a step does, are still logged.
ROUTINE = tuple(
    f"{kind} '{name}' succeeded."
    for kind, name in (
        ("Timer", "resync"),
        ("Timer", "job_tick"),
        ("Timer", "policy_usage"),
        ("Handler", "seen"),
    )
)


class RoutineFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in ROUTINE)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("operator", help="run the DaskAwsCluster operator")
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable or comma-separated); default: all namespaces "
        "(env DASK_AWS_NAMESPACES, comma-separated)",
    )
    parser.add_argument("--region", help="default AWS region (env DASK_AWS_REGION)")
    parser.add_argument(
        "--resync-seconds", type=float, help="how often a Ready cluster's tasks are read"
    )
    parser.add_argument(
        "--drift-seconds",
        type=float,
        help="how often everything else is read again and drift repaired "
        "(env DASK_AWS_DRIFT_SECONDS, default 600)",
    )
    parser.add_argument(
        "--peering",
        metavar="NAME",
        help="kopf peering name for several replicas; default: standalone",
    )
    parser.add_argument("--metrics-port", type=int, default=8080, help="0 disables")
    parser.add_argument("--probe-port", type=int, default=8081, help="0 disables /healthz")
    parser.add_argument("--bind", default="0.0.0.0", help="address for metrics and probes")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> OperatorConfig:
    config = OperatorConfig.from_env()
    updates: dict[str, Any] = {
        "standalone": args.peering is None,
        "peering_name": args.peering,
        "metrics_port": args.metrics_port or None,
        "probe_port": args.probe_port or None,
    }
    if args.namespace:
        # Repeatable, and comma-separated like DASK_AWS_NAMESPACES.
        updates["namespaces"] = [n for arg in args.namespace for n in arg.split(",") if n]
    if args.region:
        updates["region"] = args.region
    if args.resync_seconds:
        updates["resync_seconds"] = args.resync_seconds
    if args.drift_seconds is not None:
        updates["drift_seconds"] = args.drift_seconds
    return config.model_copy(update=updates)


def run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    # Imported for what importing does: registering the clusters' and jobs' handlers.
    import dask_aws.controller.job_handlers  # noqa: F401  (imports handlers.py too)
    from dask_aws.controller import heap, kube

    handler = logging.StreamHandler()
    handler.setFormatter(ObjectFormatter(LOG_FORMAT))
    if not args.verbose:
        handler.addFilter(RoutineFilter())
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    for noisy in ("botocore", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = config_from(args)
    heap.start()
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=args.bind)
    liveness = f"http://{args.bind}:{config.probe_port}/healthz" if config.probe_port else None
    unreadable = kube.policies_readable(config.namespaces)
    if unreadable:
        # Fail closed and say why: without the policies, no quota or allowlist would hold.
        logging.getLogger("dask_aws.operator").error("cannot start: %s", unreadable)
        return 2
    kopf.run(
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        standalone=config.standalone,
        peering_name=config.peering_name,
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=config, seen={}, mismatch={}),
    )
    return 0
