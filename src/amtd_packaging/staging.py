"""Staging: turn one function folder into a self-contained build folder for Knative func.

func builds only the folder it is given (knative/func#2528), so the shared core cannot stay in
src/: `amtd stage` copies it in. A staged folder holds::

    func.yaml                the function's, unchanged
    main.py                  the function's (``functions-framework --target T`` still works here)
    function/__init__.py     GENERATED ASGI bridge: func-python serves ``new``/``handle`` from it
    amtd/                    copy of the core package
    pyproject.toml           GENERATED: [project] name "function", dependencies pinned from the lock
    requirements.txt         GENERATED: the same pins, for the Google buildpacks route

Supported: func v1.19 to v1.21 (v1.21 is the tested one). Their ``pack`` builder moves the
folder to ``/workspace/fn`` and writes its own project around it (``func-python``, unpinned,
and ``function @ ./fn``, editable), which the Paketo buildpack installs with Poetry; Poetry
settles on func-python 0.7.0 (cloudevents < 2). func v1.22+ pins func-python 0.8 with
cloudevents >= 2, which functions-framework 3.10.2 cannot be installed with.

Poetry resolves for the whole range that project declares (Python >=3.9,<4.0), while the image
runs CPython 3.11 (``BP_CPYTHON_VERSION`` in func.yaml). So pyproject.toml says
``requires-python = ">=3.9"`` and every pin carries ``python_version >= '3.11'``: older Pythons
see no requirement (nothing to fail on), CPython 3.11 gets exactly the lock's pins (an image on
an older Python would install none of them and fail at import: keep BP_CPYTHON_VERSION 3.11).
requirements.txt needs no markers: pip installs for the one Python it runs on.
Nothing staged is committed; the output folder is recreated on every run.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from amtd_packaging import stagetemplates
from amtd_packaging.pinning import (
    PinningError,
    close_requirements,
    find_distributions,
    read_lock,
    trace_imports,
)
from amtd_stack.errors import ManifestError
from amtd_stack.running.definitions import FunctionDefinition, discover_functions

CORE_PACKAGE = "amtd"
STAGE_MARKER = ".amtd-stage"
# The bridge imports these itself (uvicorn's WSGI bridge ships with functions-framework).
BRIDGE_IMPORTS = frozenset({"functions_framework", "uvicorn"})
HATCHLING = "hatchling>=1.26,<2"
# The image's Python (func.yaml's BP_CPYTHON_VERSION); pins apply from there (module docstring).
RUNTIME_MARKER = "python_version >= '3.11'"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


class StagingError(Exception):
    """A function that cannot be staged; the message says why and what to do."""


@dataclass(frozen=True)
class StagedFunction:
    """The result of staging: where it went and what it pins."""

    source: FunctionDefinition
    path: Path
    requirements: Mapping[str, str]


def find_function(root: Path, name: str) -> FunctionDefinition:
    """The function whose func.yaml ``name`` is ``name``; StagingError listing the known ones."""
    try:
        functions = discover_functions(root / "functions")
    except ManifestError as error:
        raise StagingError(str(error)) from None
    if name not in functions:
        known = ", ".join(sorted(functions)) or "none"
        where = root / "functions"
        raise StagingError(
            f"no function named {name!r} (func.yaml + main.py) in {where}; known: {known}"
        )
    return functions[name]


def plan_requirements(root: Path, function: FunctionDefinition) -> dict[str, str]:
    """Pinned distributions the function needs: what main.py and the core it reaches import."""
    trace = trace_imports(function.folder / "main.py", root / "src", CORE_PACKAGE)
    try:
        roots = find_distributions(trace.external | BRIDGE_IMPORTS)
        return close_requirements(roots, read_lock(root / "requirements.lock"))
    except PinningError as error:
        raise StagingError(f"{function.name}: {error}") from None


def render_template(text: str, values: Mapping[str, str]) -> str:
    """A template of :mod:`amtd_packaging.stagetemplates` with ``@KEY@`` placeholders filled
    (pure).
    """
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def render_pyproject(function: FunctionDefinition, pins: Mapping[str, str]) -> str:
    """The generated pyproject.toml: project ``function``, dependencies pinned (with the marker)."""
    dependencies = "".join(
        f'    "{name}=={version}; {RUNTIME_MARKER}",\n' for name, version in sorted(pins.items())
    )
    values = {"NAME": function.name, "DEPENDENCIES": dependencies, "HATCHLING": HATCHLING}
    return render_template(stagetemplates.PYPROJECT, values)


def render_bridge(function: FunctionDefinition) -> str:
    """The generated function/__init__.py for this function's target."""
    return render_template(
        stagetemplates.BRIDGE, {"NAME": function.name, "TARGET": function.target}
    )


def render_requirements(function: FunctionDefinition, pins: Mapping[str, str]) -> str:
    """The generated requirements.txt (Google buildpacks read it; func reads pyproject.toml)."""
    lines = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    return (
        f"# GENERATED by `amtd stage {function.name}` from requirements.lock: do not edit.\n{lines}"
    )


def prepare_out_dir(out: Path) -> None:
    """Empty ``out`` for a new stage; refuse a non-empty folder that is not a previous stage."""
    if out.exists() and any(out.iterdir()):
        if not (out / STAGE_MARKER).is_file():
            raise StagingError(f"{out} is not empty and was not made by `amtd stage`; refusing")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def stage_function(root: Path, name: str, out: Path) -> StagedFunction:
    """Write the staged build folder of function ``name`` to ``out`` and return what it holds."""
    function = find_function(root, name)
    pins = plan_requirements(root, function)
    prepare_out_dir(out)
    shutil.copy2(function.folder / "func.yaml", out / "func.yaml")
    shutil.copy2(function.folder / "main.py", out / "main.py")
    shutil.copytree(root / "src" / CORE_PACKAGE, out / CORE_PACKAGE, ignore=IGNORED)
    (out / "function").mkdir()
    (out / "function" / "__init__.py").write_text(render_bridge(function), encoding="utf-8")
    (out / "pyproject.toml").write_text(render_pyproject(function, pins), encoding="utf-8")
    (out / "requirements.txt").write_text(render_requirements(function, pins), encoding="utf-8")
    (out / STAGE_MARKER).write_text(f"{name}\n", encoding="utf-8")
    return StagedFunction(function, out, pins)
