"""The `dask-aws` command line: one subcommand per module, each registering itself."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

# Each entry is a module exposing `register(subparsers)`; it sets `func` on its parser.
# Modules are imported lazily so `dask-aws crd` does not pay for kopf or distributed.
SUBCOMMAND_MODULES = (
    "dask_aws.local.cli",
    "dask_aws.controller.cli",
    "dask_aws.cluster.gc",
    "dask_aws.iam.policy",
    "dask_aws.jobs.logs_cli",
)


def _print_crd(args: argparse.Namespace) -> int:
    from dask_aws.crd import crd_documents, crd_yaml

    if args.dir is None:
        sys.stdout.write(crd_yaml())
        return 0
    # One file per CRD, as crds/ and the chart's crds/ hold them.
    for name, text in crd_documents():
        (args.dir / name).write_text(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dask-aws", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    crd = subparsers.add_parser(
        "crd",
        help="print the CustomResourceDefinitions (DaskAwsCluster, DaskAwsPolicy, DaskAwsJob) "
        "as one YAML stream",
    )
    crd.add_argument("--dir", type=Path, help="write one file per CRD into this directory instead")
    crd.set_defaults(func=_print_crd)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int | None = args.func(args)
    return result or 0


if __name__ == "__main__":
    sys.exit(main())
