"""Test code imports shared helpers from tests/fixtures/ and the product's public names only:
never another test module (its helpers belong in tests/fixtures/) and never an underscore
name of dask_aws (make it public, or test through the public API)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "benchmarks", "examples")


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def _test_module(dotted: str) -> bool:
    return any(part.startswith("test_") for part in dotted.split("."))


def violations(source: str) -> list[str]:
    """The forbidden imports in one module's source."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for dotted in modules:
            if _test_module(dotted):
                found.append(f"line {node.lineno}: imports the test module {dotted}")
            elif dotted.split(".")[0] == "dask_aws" and _private(dotted):
                found.append(f"line {node.lineno}: imports the private {dotted}")
    return found


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from tests.engine.test_plan import task", True),
        ("from tests.engine import test_plan", True),
        ("import tests.engine.test_plan", True),
        ("from dask_aws.cluster.gc import _ours", True),
        ("from dask_aws.local import _x", True),
        ("import dask_aws._internal", True),
        ("from tests.fixtures.polling import wait_for", False),
        ("from dask_aws.cluster.gc import inventory", False),
        ("from benchmarks.scale_up import _table", False),
        ("from dask_aws import __version__", False),
    ],
)
def test_the_scan_tells_forbidden_imports(source: str, bad: bool) -> None:
    assert bool(violations(source)) == bad


def test_no_test_module_or_private_product_name_is_imported() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {problem}"
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*.py"))
        # Hidden folders are not the project's: benchmarks/.venv-peer holds the peer's venv.
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        for problem in violations(path.read_text())
    ]
    assert found == []
