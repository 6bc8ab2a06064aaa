"""The local AWS is an extra (`dask-aws[local]`): the product runs without moto, and
`dask-aws local` says how to install it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dask_aws
from dask_aws.local.cli import INSTALL_HINT, LOCAL_EXTRA_MODULES

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# A None entry in sys.modules makes every import of that package fail, as if not installed.
HIDE_LOCAL_EXTRA = (
    f"import sys\nfor name in {LOCAL_EXTRA_MODULES!r}:\n    sys.modules[name] = None\n"
)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE_LOCAL_EXTRA + code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _product_modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(dask_aws.__path__, "dask_aws.")
        if m.name != "dask_aws.local" and not m.name.startswith("dask_aws.local.")
    )


def test_moto_is_only_in_the_local_extra() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    local = project["optional-dependencies"]["local"]
    assert any(d.startswith("moto[server]") for d in local)
    assert not [d for d in project["dependencies"] if d.startswith(LOCAL_EXTRA_MODULES)]
    assert "dask-aws[local]" in project["optional-dependencies"]["dev"]


def test_the_product_imports_without_the_local_aws() -> None:
    modules = _product_modules()
    assert "dask_aws.controller.cli" in modules and "dask_aws.cluster.gc" in modules
    code = (
        f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
        "assert 'dask_aws.local' not in sys.modules\n"
        # The CLI registers `dask-aws local` without importing the emulator.
        "import dask_aws.cli\ndask_aws.cli.build_parser()\n"
        "import dask_aws.local\n"
        f"assert not [m for m in sys.modules if m.partition('.')[0] in {LOCAL_EXTRA_MODULES!r}"
        " and sys.modules[m] is not None]\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


def test_dask_aws_local_without_moto_says_how_to_install_it() -> None:
    proc = _python(
        "import dask_aws.cli\nsys.exit(dask_aws.cli.main(['local', 'up', '--port', '0']))"
    )
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert INSTALL_HINT in line and "moto" in line
