"""Import contract, belt and braces for `lint-imports`: only amtd.kube.api touches `kubernetes`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import amtd

CORE = Path(amtd.__file__).resolve().parent
BOUNDARY = CORE / "kube" / "api.py"
IMPORTS_KUBERNETES = re.compile(r"^\s*(import\s+kubernetes\b|from\s+kubernetes\b)", re.MULTILINE)


def core_modules() -> list[Path]:
    """Every module of the core package."""
    return sorted(CORE.rglob("*.py"))


def test_no_core_module_but_kubeapi_imports_kubernetes() -> None:
    offenders = [
        path.relative_to(CORE).as_posix()
        for path in core_modules()
        if path != BOUNDARY and IMPORTS_KUBERNETES.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_pattern_sees_kubeapis_own_import() -> None:
    assert IMPORTS_KUBERNETES.search(BOUNDARY.read_text(encoding="utf-8"))
    assert IMPORTS_KUBERNETES.search("def f():\n    from kubernetes import client\n")
    assert not IMPORTS_KUBERNETES.search("# talks to kubernetes\nimport kubernetes_validate\n")


def test_importing_the_whole_core_loads_no_kubernetes() -> None:
    names = [
        "amtd." + path.relative_to(CORE).with_suffix("").as_posix().replace("/", ".")
        for path in core_modules()
        if path.name != "__init__.py"
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
