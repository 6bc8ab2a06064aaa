"""The `dask_aws` section of dask.config, with defaults shipped in dask_aws.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.config
import yaml
from dask.utils import parse_timedelta

DEFAULTS_PATH = Path(__file__).resolve().parent.parent / "dask_aws.yaml"


def _register() -> None:
    with DEFAULTS_PATH.open() as handle:
        defaults = yaml.safe_load(handle)
    dask.config.update_defaults(defaults)


def get(key: str) -> Any:
    """`dask_aws.<key>`; '-' and '_' are interchangeable, as everywhere in dask.config."""
    return dask.config.get(f"dask_aws.{key}")


def seconds(key: str) -> float | None:
    value = get(key)
    if value is None or value == "":
        return None
    result = parse_timedelta(value, default="seconds")
    return None if result is None else float(result)


_register()
