"""Staged builds install and run as func would run them, in FRESH virtual environments.

Each staged folder is pip-installed (as func's build does: the project ``function`` with its
pinned dependencies) into a new venv and imported from there. The matcher's build is then
served by func-python 0.7.0 (func v1.21's runtime) the way func's generated service does it:
import ``new`` (else ``handle``) from the package ``function`` and hand it to
``func_python.http.serve``. It must answer the probes and decide a real SecurityEvent against
the API stand-in.

A wheelhouse is filled once per session (``pip download``, PyPI, pip's cache makes reruns
cheap); installs then run offline from it (``--no-index``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from amtd.actionevents import ACTION_REQUESTED
from amtd.kubeapi import SECURITY_EVENTS
from amtd_stack.serving import pick_free_port
from amtd_stack.staging import HATCHLING, StagedFunction, plan_requirements, stage_function
from support.cloudevents import as_binary, read_reply
from support.processes import serve_process
from support.standins import connect, install_crds, install_phoenix_sample
from support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
FUNC_PYTHON = "func-python==0.7.0"
NAMES = sorted(
    yaml.safe_load(p.read_text())["name"] for p in (ROOT / "functions").rglob("func.yaml")
)
# What func's generated service/main.py does with the function package (func v1.21).
RUNNER = """
from func_python.http import serve
try:
    from function import new as function
except ImportError:
    from function import handle as function
serve(function)
"""


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **options)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StagedFunction]:
    """Every function staged once."""
    base = tmp_path_factory.mktemp("staged")
    return {name: stage_function(ROOT, name, base / name) for name in NAMES}


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, staged: dict[str, StagedFunction]) -> Path:
    """Wheels for every pin of every staged build, the build backend and func-python."""
    house = tmp_path_factory.mktemp("wheelhouse")
    pins = sorted({f"{n}=={v}" for s in staged.values() for n, v in s.requirements.items()})
    command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    run([*command, "-d", str(house), *pins, HATCHLING, FUNC_PYTHON])
    return house


def fresh_venv(path: Path, wheelhouse: Path, *requirements: str) -> Path:
    """A new venv holding only ``requirements`` (from the wheelhouse); its python."""
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    offline = ["--no-index", "--find-links", str(wheelhouse), "--no-compile"]
    run([*install, *offline, "--disable-pip-version-check", *requirements])
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could leak the dev venv into the fresh one."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "KUBERNETES_SERVICE_HOST", "PYTHONHOME"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


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


@pytest.fixture
def func_python_matcher(
    staged: dict[str, StagedFunction], wheelhouse: Path, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """The staged matcher served by func-python; its URL and the (not yet written) kubeconfig."""
    python = fresh_venv(tmp_path / "venv", wheelhouse, str(staged["matcher"].path), FUNC_PYTHON)
    port = pick_free_port()
    kubeconfig = tmp_path / "matcher.kubeconfig"
    env = clean_env(LISTEN_ADDRESS=f"127.0.0.1:{port}", KUBECONFIG=str(kubeconfig))
    command = [str(python), "-c", RUNNER]
    with (
        (tmp_path / "matcher.log").open("w") as log,
        # func-python traps SIGTERM without always exiting: killed after a short grace
        serve_process(command, port, 5, cwd=tmp_path, env=env, stdout=log, stderr=log) as url,
    ):
        yield url, kubeconfig


def is_ready(url: str) -> bool:
    """Whether the readiness probe answers 200."""
    return requests.get(f"{url}/health/readiness", timeout=10).status_code == 200


def test_matcher_runs_under_func_python(
    func_python_matcher: tuple[str, Path], apiserver: Any, kubeconfig: Path
) -> None:
    url, matcher_kubeconfig = func_python_matcher
    liveness = requests.get(f"{url}/health/liveness", timeout=10)
    assert (liveness.status_code, liveness.text) == (200, "OK")
    not_ready = requests.get(f"{url}/health/readiness", timeout=10)
    assert not_ready.status_code == 500  # func-python's answer for ready() == False
    assert "NotReady" in not_ready.text  # the function's own readiness, passed through

    cluster = connect(kubeconfig)
    install_crds(cluster)
    pod = install_phoenix_sample(cluster)[0]
    apiserver.write_kubeconfig(matcher_kubeconfig, user="matcher")
    wait_for(lambda: is_ready(url), "the matcher to be ready", interval_s=0.1)

    target = f"demo/{pod['metadata']['name']}"
    obj = cluster.create(
        SECURITY_EVENTS,
        {
            "apiVersion": "amtd.r6security.com/v1beta1",
            "kind": "SecurityEvent",
            "metadata": {"name": f"staged-{uuid.uuid4().hex[:8]}"},
            "spec": {"targets": [target], "rule": {"type": "network-attack"}, "description": "x"},
        },
    )
    attributes = {
        "type": "dev.knative.apiserver.resource.add",
        "source": apiserver.url,
        "id": str(uuid.uuid4()),
        "datacontenttype": "application/json",
        "kind": "SecurityEvent",
        "apiversion": "amtd.r6security.com/v1beta1",
        "name": obj["metadata"]["name"],
    }
    headers, body = as_binary(attributes, obj)
    reply = requests.post(url, headers=headers, data=body, timeout=30)
    assert reply.status_code == 200, reply.text
    reply_attributes, data = read_reply(reply.headers, reply.content)
    assert reply_attributes["type"] == ACTION_REQUESTED
    assert reply_attributes["amtdquarantine"] == "true"
    assert [(s["target"], s["action"]) for s in data["steps"]] == [(target, "quarantine")]
    users = {r.user for r in apiserver.requests if r.resource == "securityevents"}
    assert "matcher" in users  # it acted with its own identity, from the fresh venv


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
