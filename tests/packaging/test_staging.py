"""`amtd stage`: what a staged folder holds, how its dependencies are pinned, `make deploy`."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from amtd_cli import main as amtd_main
from amtd_packaging.pinning import (
    PinningError,
    close_requirements,
    read_lock,
    scan_imports,
    trace_imports,
)
from amtd_packaging.staging import STAGE_MARKER, StagingError, plan_requirements, stage_function
from amtd_stack.running.definitions import FunctionDefinition

ROOT = Path(__file__).resolve().parents[2]
LOCK = read_lock(ROOT / "requirements.lock")
ARGS = ("FUNCTION=matcher", "REGISTRY=registry.example.com/amtd")
DEV_ONLY = {"pytest", "ruff", "mypy", "hypothesis", "import-linter", "kubernetes-validate"}


def test_staged_folder_is_self_contained(tmp_path: Path) -> None:
    staged = stage_function(ROOT, "matcher", tmp_path / "matcher")
    out = staged.path
    assert (out / "main.py").read_text() == (ROOT / "functions/matcher/main.py").read_text()
    assert (out / "func.yaml").read_text() == (ROOT / "functions/matcher/func.yaml").read_text()
    assert (out / "amtd/kube/api.py").read_text() == (ROOT / "src/amtd/kube/api.py").read_text()
    assert not list(out.rglob("__pycache__"))
    bridge = (out / "function/__init__.py").read_text()
    assert 'TARGET = "match_security_event"' in bridge
    assert "async def handle(scope: Any, receive: Any, send: Any) -> None:" in bridge
    assert "def new() -> Function:" in bridge
    compile(bridge, "function/__init__.py", "exec")


def test_pyproject_pins_what_the_function_needs_from_the_lock(tmp_path: Path) -> None:
    staged = stage_function(ROOT, "matcher", tmp_path / "matcher")
    project = tomllib.loads((staged.path / "pyproject.toml").read_text())
    assert project["project"]["name"] == "function"
    requirements = [Requirement(line) for line in project["project"]["dependencies"]]
    pins = {r.name: str(r.specifier).removeprefix("==") for r in requirements}
    assert pins == dict(staged.requirements)
    assert all(str(r.specifier) == f"=={pins[r.name]}" for r in requirements)
    assert all(LOCK[name] == version for name, version in pins.items())
    for needed in ("functions-framework", "cloudevents", "kubernetes", "pydantic", "uvicorn"):
        assert pins[needed] == LOCK[needed]
    assert not DEV_ONLY & set(pins)
    listed = (staged.path / "requirements.txt").read_text().splitlines()[1:]
    assert listed == [f"{name}=={version}" for name, version in sorted(pins.items())]
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["function", "amtd"]
    assert wheel["force-include"] == {"main.py": "function/main.py"}


def test_pins_apply_from_the_image_python_so_poetry_can_resolve_from_3_9(tmp_path: Path) -> None:
    """func's pack build resolves for Python >=3.9,<4.0; the image runs CPython 3.11."""
    staged = stage_function(ROOT, "matcher", tmp_path / "matcher")
    project = tomllib.loads((staged.path / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.9"
    (marker,) = {Requirement(line).marker for line in project["dependencies"]}  # one for all
    assert marker is not None and str(marker) == 'python_version >= "3.11"'
    applies = {v: marker.evaluate({"python_version": v}) for v in ("3.9", "3.10", "3.11", "3.13")}
    assert applies == {"3.9": False, "3.10": False, "3.11": True, "3.13": True}
    requirements = (staged.path / "requirements.txt").read_text()
    assert ";" not in requirements  # pip installs for the one Python it runs on


def test_only_the_timer_needs_croniter(functions: dict[str, FunctionDefinition]) -> None:
    needs = {name: "croniter" in plan_requirements(ROOT, f) for name, f in functions.items()}
    assert needs == {name: name == "timer" for name in functions}


def test_restaging_replaces_the_folder_but_never_a_foreign_one(tmp_path: Path) -> None:
    out = tmp_path / "stage"
    stage_function(ROOT, "dead-letters", out)
    (out / "leftover.txt").write_text("old")
    stage_function(ROOT, "dead-letters", out)
    assert not (out / "leftover.txt").exists()
    assert (out / STAGE_MARKER).read_text() == "dead-letters\n"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(StagingError, match="not made by `amtd stage`"):
        stage_function(ROOT, "dead-letters", foreign)
    assert (foreign / "notes.txt").read_text() == "keep"


def test_unknown_function_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(StagingError) as caught:
        stage_function(ROOT, "matchr", tmp_path / "x")
    assert "no function named 'matchr'" in str(caught.value)
    assert "executor-delete" in str(caught.value)
    assert not (tmp_path / "x").exists()


def test_cli_stages_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "staged"
    assert amtd_main(["stage", "executor-quarantine", "--out", str(out)]) == 0
    assert f"func deploy --path {out}" in capsys.readouterr().out
    assert (out / "function/__init__.py").is_file()
    assert amtd_main(["stage", "nope", "--out", str(tmp_path / "n")]) == 2
    assert "no function named 'nope'" in capsys.readouterr().err


def test_scan_imports_resolves_relative_and_lazy_imports() -> None:
    source = (
        "import os, yaml\n"
        "from . import sibling\n"
        "from ..core import thing\n"
        "def f():\n"
        "    import kubernetes.client\n"
    )
    found = scan_imports(source, "amtd.ingest.alerts.falco")
    assert {
        "os",
        "yaml",
        "amtd.ingest.alerts",
        "amtd.ingest.alerts.sibling",
        "amtd.ingest.core",
    } <= found
    assert {"amtd.ingest.core.thing", "kubernetes.client"} <= found


def test_trace_follows_the_core_and_reports_outside_modules(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text("import functions_framework\nfrom amtd.edge.responding import answer_health\n")
    trace = trace_imports(main, ROOT / "src", "amtd")
    assert {"amtd", "amtd.edge.responding", "amtd.kube.api"} <= trace.core_modules
    assert {"functions_framework", "flask", "cloudevents", "kubernetes"} <= trace.external
    assert "json" not in trace.external  # the standard library needs no pin


def test_a_requirement_missing_from_the_lock_is_refused() -> None:
    lock = {k: v for k, v in LOCK.items() if k != "markupsafe"}
    with pytest.raises(PinningError, match="markupsafe is needed but not pinned"):
        close_requirements(["flask"], lock)


def test_make_deploy_fails_clearly_without_func(tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make, "make is needed for `make deploy`"
    result = subprocess.run(
        # -o: never rebuild the venv from here; FUNC: a name that is surely not installed
        [make, "-s", "-o", ".venv/.installed", "deploy", *ARGS, "FUNC=amtd-no-func"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "the Knative func CLI ('amtd-no-func') is not installed" in result.stderr
    assert "staged" not in result.stdout  # it stops before staging anything
