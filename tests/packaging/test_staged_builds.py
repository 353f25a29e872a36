"""Staged builds installed the pip way (wheel, not editable), in FRESH virtual environments.

The pip route: each staged folder is pip-installed (the project ``function`` with its pinned
dependencies, as a wheel: main.py forced in beside the bridge) into a new venv and imported
from there; the Google buildpacks' route installs requirements.txt and runs functions-framework
in the folder. func's pack builder (Poetry, editable) is test_func_pack_builds.py,
which also serves every function through func-python.

A wheelhouse is filled once per session (``pip download``, PyPI, pip's cache makes reruns
cheap); installs then run offline from it (``--no-index``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from amtd_packaging.staging import HATCHLING, StagedFunction, plan_requirements, stage_function
from amtd_stack.running.definitions import discover_functions
from amtd_stack.serving import pick_free_port
from support.funcpack import clean_env, run
from support.processes import serve_process

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(discover_functions(ROOT / "functions"))


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StagedFunction]:
    """Every function staged once."""
    base = tmp_path_factory.mktemp("staged")
    return {name: stage_function(ROOT, name, base / name) for name in NAMES}


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, staged: dict[str, StagedFunction]) -> Path:
    """Wheels for every pin of every staged build and the build backend."""
    house = tmp_path_factory.mktemp("wheelhouse")
    pins = sorted({f"{n}=={v}" for s in staged.values() for n, v in s.requirements.items()})
    command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    run([*command, "-d", str(house), *pins, HATCHLING])
    return house


def fresh_venv(path: Path, wheelhouse: Path, *requirements: str) -> Path:
    """A new venv holding only ``requirements`` (from the wheelhouse); its python."""
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    offline = ["--no-index", "--find-links", str(wheelhouse), "--no-compile"]
    run([*install, *offline, "--disable-pip-version-check", *requirements])
    return python


@pytest.mark.parametrize("name", NAMES)
def test_staged_build_installs_and_imports_in_a_fresh_venv(
    name: str, staged: dict[str, StagedFunction], wheelhouse: Path, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv", wheelhouse, str(staged[name].path))
    probe = (
        "import json, amtd, function;"
        "print(json.dumps([function.TARGET, str(function.SOURCE), amtd.__file__,"
        " callable(function.handle), callable(function.new)]))"
    )
    result = run([str(python), "-c", probe], cwd=tmp_path, env=clean_env(INGEST_TOKEN="t"))
    target, source, core, has_handle, has_new = json.loads(result.stdout.splitlines()[-1])
    assert target == staged[name].source.target
    site = str(tmp_path / "venv" / "lib")
    assert source.startswith(site) and source.endswith("function/main.py")
    assert core.startswith(site)  # the copied core, installed; not the checkout's src/
    assert has_handle and has_new


def test_plan_for_every_function_is_pinned(staged: dict[str, StagedFunction]) -> None:
    for name, build in staged.items():
        assert build.requirements == plan_requirements(ROOT, build.source), name


def test_staged_folder_serves_with_functions_framework_from_requirements(
    staged: dict[str, StagedFunction], wheelhouse: Path, tmp_path: Path
) -> None:
    """The Google buildpacks route: requirements.txt installed, functions-framework run here."""
    build = staged["dead-letters"]
    fresh_venv(tmp_path / "venv", wheelhouse, "-r", str(build.path / "requirements.txt"))
    port = pick_free_port()
    command = [
        str(tmp_path / "venv" / "bin" / "functions-framework"),
        *("--target", build.source.target, "--host", "127.0.0.1", "--port", str(port)),
    ]
    env = clean_env(KUBECONFIG=str(tmp_path / "missing-kubeconfig"))
    with serve_process(command, port, cwd=build.path, env=env, stderr=subprocess.DEVNULL) as url:
        assert requests.get(f"{url}/health/liveness", timeout=10).status_code == 200
        assert requests.get(f"{url}/health/readiness", timeout=10).status_code == 503
