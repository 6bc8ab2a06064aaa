"""`dask-aws iam-policy`: print the least-privilege IAM policy the engine needs.

The policy comes from dask_aws.iam.permissions, where each module's calls are declared;
tests/iam runs the whole engine lifecycle under exactly this policy on the local AWS with
IAM enforcement, and fails it once without each action. `--for library` prints the policy
for a FargateCluster/ECSCluster user (the engine's, plus heartbeat tags, get_logs() and
the public-IP lookup), `--for gc` the one for `dask-aws gc`; tests/iam runs those too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dask_aws.iam import permissions


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "iam-policy",
        help="print the IAM policy the operator, the Python API or dask-aws gc needs",
        description="Print the IAM policy JSON the engine needs. create-all: the engine "
        "creates the ECS cluster, roles, security group and log group. bring-your-own: "
        "specs name clusterArn, iam.executionRoleArn/taskRoleArn, network.securityGroups "
        "and logs.group, so no IAM role or network changes are needed.",
    )
    parser.add_argument("--mode", choices=permissions.MODES, default="create-all")
    parser.add_argument(
        "--for",
        dest="audience",
        choices=permissions.AUDIENCES,
        default="operator",
        help="operator (default): what the operator's identity needs; library: a "
        "FargateCluster/ECSCluster user (adds heartbeat tags, get_logs(), the public-IP "
        "lookup); gc: `dask-aws gc` (adds listing clusters, roles, task definition "
        "families and log groups to find leftovers)",
    )
    parser.add_argument("--partition", default="aws", help="aws, aws-cn, aws-us-gov")
    parser.add_argument("--account", default="*", help="limit ARNs to this account id")
    parser.add_argument("--region", default="*", help="limit ARNs to this region")
    parser.add_argument(
        "--role-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="bring-your-own: a role specs may name (repeatable, * allowed); default any",
    )
    parser.add_argument(
        "--cluster-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="bring-your-own: an ECS cluster specs may name (repeatable); default any",
    )
    parser.add_argument(
        "--task-role-policy",
        action="append",
        default=[],
        metavar="ARN",
        help="create-all: a managed policy specs may attach to task roles "
        "(iam.taskRolePolicies; repeatable; '*' for any). Default: none",
    )
    parser.add_argument(
        "--tenant-role",
        action="append",
        default=[],
        metavar="ARN",
        help="operator: a role DaskAwsPolicies may name in aws.roleArn (repeatable, * "
        "allowed, e.g. arn:aws:iam::*:role/dask-aws-tenant-*); default: none, no sts:AssumeRole",
    )
    parser.add_argument(
        "--explain", action="store_true", help="list each action, its module and why instead"
    )
    parser.set_defaults(func=run)


def options_from(args: argparse.Namespace) -> permissions.Options:
    return permissions.Options(
        partition=args.partition,
        account=args.account,
        region=args.region,
        role_arns=tuple(args.role_arn),
        cluster_arns=tuple(args.cluster_arn),
        task_role_policies=tuple(args.task_role_policy),
        tenant_roles=tuple(args.tenant_role),
    )


def run(args: argparse.Namespace) -> int:
    if args.mode == "create-all" and (args.role_arn or args.cluster_arn):
        print("--role-arn and --cluster-arn apply to --mode bring-your-own", file=sys.stderr)
        return 2
    if args.mode == "bring-your-own" and args.task_role_policy:
        print("--task-role-policy applies to --mode create-all", file=sys.stderr)
        return 2
    if args.explain:
        rows = permissions.explain(args.mode, args.audience)
        width = max(len(action) for action, _, _ in rows)
        for action, module, why in rows:
            sys.stdout.write(f"{action:<{width}}  {module:<16}  {why}\n")
        for action, why in permissions.NO_PERMISSION_NEEDED.items():
            sys.stdout.write(f"{action:<{width}}  {'(not granted)':<16}  {why}\n")
        return 0
    sys.stdout.write(permissions.policy_json(args.mode, options_from(args), args.audience))
    return 0
