"""The import contracts in pyproject.toml can fail: each one is broken on purpose in a copy.

The source tree is copied to a temporary directory, one violating module is planted in the copy,
and ``lint-imports`` runs against the copy (first on ``PYTHONPATH``, so the real tree is never
read) limited to the contract under test. An unchanged copy keeps every contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def copy_tree(tmp_path: Path) -> Path:
    """src/ and pyproject.toml copied under ``tmp_path``; returns the copy's src/."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "src"


def lint(tmp_path: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the copy, limited to ``contracts`` (all when none are named)."""
    limits = [arg for contract in contracts for arg in ("--contract", contract)]
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache", "--no-logo", *limits],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_unchanged_copy_keeps_every_contract(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


VIOLATIONS = [
    ("core-layers", "amtd/model/probe.py", "import amtd.decide.matching\n"),
    ("core-layers", "amtd/kube/probe.py", "from amtd.act import claiming\n"),
    ("core-layers", "amtd/ingest/probe.py", "import amtd.act.claiming\n"),  # siblings
    ("core-layers", "amtd/decide/probe.py", "import amtd.deadletters\n"),  # siblings
    ("core-layers", "amtd/unlayered/__init__.py", ""),  # exhaustive: every stage is placed
    ("http-at-the-edge", "amtd/act/probe.py", "import flask\n"),
    ("http-at-the-edge", "amtd/model/probe.py", "import werkzeug\n"),
    ("http-at-the-edge", "amtd/kube/probe.py", "from cloudevents.http import CloudEvent\n"),
    ("http-at-the-edge", "amtd/schedule/probe.py", "import requests\n"),
    ("http-at-the-edge", "amtd/deadletters.py", "import functions_framework\n"),
    ("light-functions", "amtd/ingest/probe.py", "import amtd.model.securityevents\n"),
    ("light-functions", "amtd/schedule/timing.py", "import pydantic\n"),
    ("light-functions", "amtd/edge/receiving.py", "import amtd.decide.deciding\n"),
    ("kubernetes-in-kube-api", "amtd/model/probe.py", "import kubernetes\n"),
    ("kubernetes-in-kube-api", "amtd/kube/events.py", "from kubernetes import client\n"),
]


@pytest.mark.parametrize(("contract", "module", "source"), VIOLATIONS)
def test_a_planted_violation_breaks_the_contract(
    tmp_path: Path, contract: str, module: str, source: str
) -> None:
    path = copy_tree(tmp_path) / module
    path.parent.mkdir(exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(existing + source, encoding="utf-8")
    result = lint(tmp_path, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
