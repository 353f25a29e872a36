"""Fixtures of the packaging tests: the committed manifests and functions, and scratch copies.

(No ``__init__.py`` here on purpose: a package named ``packaging`` would shadow the real one.)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from amtd_stack.manifests import Manifest, load_manifests
from amtd_stack.running.definitions import FunctionDefinition, discover_functions

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).with_name("schemas")  # upstream schemas, copied (see its README)


@pytest.fixture(scope="session")
def manifests() -> list[Manifest]:
    """Every object of knative/kustomization.yaml."""
    return load_manifests(ROOT / "knative")


@pytest.fixture(scope="session")
def functions() -> dict[str, FunctionDefinition]:
    """Every function (func.yaml + main.py) by its func.yaml name."""
    return discover_functions(ROOT / "functions")


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch copy of knative/ and functions/ that a test may break."""
    for folder in ("knative", "functions"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    return tmp_path


EditDocuments = Callable[[Path, Callable[[list[dict[str, Any]]], None]], None]


@pytest.fixture
def edit_documents() -> EditDocuments:
    """Rewrite a YAML file's documents in place with a function that mutates them."""

    def edit(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        change(documents)
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")

    return edit
