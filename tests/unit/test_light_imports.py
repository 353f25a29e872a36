"""Cold start: the functions that need no models import none (pydantic stays unloaded).

Ingest, timer and dead-letters work on plain dicts; building the pydantic models of
SecurityEvents, AMTDs and actions at import would cost them ~30 ms of every cold start
(`make bench`, P3). The ``light-functions`` contract in pyproject.toml forbids it inside the core;
two things it cannot see stay here: functions/*/main.py lie outside the root packages (so the
modules they import are checked to be the contract's sources), and third-party packages are
leaves in its graph (so a fresh interpreter imports what each main.py imports and must not end
up with pydantic loaded by, say, a CloudEvents or Flask release that started importing it).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
LIGHT_FUNCTIONS = (
    "ingest-falco",
    "ingest-kubearmor",
    "ingest-alertmanager",
    "timer",
    "dead-letters",
    "notify",
)


def amtd_imports(function: str) -> list[str]:
    """The amtd modules the function's main.py imports (``from amtd import x`` counts as x)."""
    tree = ast.parse((FUNCTIONS / function / "main.py").read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "amtd":
            modules |= {f"amtd.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amtd."):
            modules.add(str(node.module))
    return sorted(modules)


def loaded_after_importing(modules: list[str]) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing ``modules``."""
    script = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return {name.split(".")[0] for name in result.stdout.split()}


@pytest.mark.parametrize("function", LIGHT_FUNCTIONS)
def test_light_functions_load_no_models(function: str) -> None:
    modules = amtd_imports(function)
    assert (
        "amtd.edge.responding" in modules or "amtd.edge.receiving" in modules
    )  # read the right file
    assert "pydantic" not in loaded_after_importing(modules)


def test_the_check_sees_models() -> None:
    assert "pydantic" in loaded_after_importing(["amtd.model.securityevents"])


def light_contract_sources() -> list[str]:
    """The source modules of the ``light-functions`` import contract."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = settings["tool"]["importlinter"]["contracts"]
    (light,) = [contract for contract in contracts if contract.get("id") == "light-functions"]
    assert light["forbidden_modules"] == ["pydantic"] and not light.get("allow_indirect_imports")
    return list(light["source_modules"])


@pytest.mark.parametrize("function", LIGHT_FUNCTIONS)
def test_the_contract_covers_what_light_functions_import(function: str) -> None:
    sources = light_contract_sources()
    uncovered = [
        module
        for module in imported_core_modules(function)
        if not any(module == source or module.startswith(f"{source}.") for source in sources)
    ]
    assert uncovered == []


def imported_core_modules(function: str) -> set[str]:
    """The amtd modules main.py imports, ``from amtd.kube import api`` counting as amtd.kube.api."""
    tree = ast.parse((FUNCTIONS / function / "main.py").read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amtd"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                modules.add(name if is_module(name) else str(node.module))
    return modules


def is_module(name: str) -> bool:
    """Whether ``name`` names a module (not an attribute of one)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
