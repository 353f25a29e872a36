"""Cold start: the functions that need no models import none (pydantic stays unloaded).

Ingest, timer and dead-letters work on plain dicts; building the pydantic models of
SecurityEvents, AMTDs and actions at import would cost them ~30 ms of every cold start
(`make bench`, P3). Checked in a fresh interpreter, importing what each main.py imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
LIGHT_FUNCTIONS = ("ingest-falco", "ingest-kubearmor", "timer", "dead-letters")


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
