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
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client, config

from amtd.actionevents import ACTION_REQUESTED
from amtd.kubeapi import PODS, POLICIES, SECURITY_EVENTS, Cluster, Resource
from amtd_stack.staging import HATCHLING, StagedFunction, plan_requirements, stage_function
from support.cloudevents import as_binary, read_reply
from support.functions import pick_free_port, wait_for_port

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
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
DEADLINE_S = 20.0


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


def poll(predicate: Callable[[], Any], timeout_s: float = DEADLINE_S) -> Any:
    """Call ``predicate`` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {predicate}")
        time.sleep(0.1)
    return result


def connect(kubeconfig: Path) -> Cluster:
    """A Cluster for the test itself, on the official client."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return Cluster(client.ApiClient(configuration))


def install_world(cluster: Cluster) -> dict[str, Any]:
    """CRDs, the Phoenix sample AMTD + Deployment in ``demo``; one running pod of it."""
    for path in sorted((ROOT / "knative" / "crds").glob("*.yaml")):
        cluster.create(CRDS, yaml.safe_load(path.read_text()))
    phoenix = ROOT / "tests" / "unit" / "phoenix"
    namespace, deployment = yaml.safe_load_all((phoenix / "test-deployment.yaml").read_text())
    cluster.create(NAMESPACES, namespace)
    cluster.create(DEPLOYMENTS, deployment, "demo")
    cluster.create(POLICIES, yaml.safe_load((phoenix / "amtd-sample.yaml").read_text()), "demo")

    def running() -> list[dict[str, Any]]:
        pods = cluster.list(PODS, "demo", label_selector="app=nginx")
        return [p for p in pods if p.get("status", {}).get("phase") == "Running"]

    pod: dict[str, Any] = poll(running)[0]
    return pod


@pytest.fixture
def func_python_matcher(
    staged: dict[str, StagedFunction], wheelhouse: Path, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """The staged matcher served by func-python; its URL and the (not yet written) kubeconfig."""
    python = fresh_venv(tmp_path / "venv", wheelhouse, str(staged["matcher"].path), FUNC_PYTHON)
    port = pick_free_port()
    kubeconfig = tmp_path / "matcher.kubeconfig"
    env = clean_env(LISTEN_ADDRESS=f"127.0.0.1:{port}", KUBECONFIG=str(kubeconfig))
    log = (tmp_path / "matcher.log").open("w")
    process = subprocess.Popen(
        [str(python), "-c", RUNNER], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", kubeconfig
    finally:
        process.terminate()  # func-python traps SIGTERM without always exiting: then kill
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


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
    pod = install_world(cluster)
    apiserver.write_kubeconfig(matcher_kubeconfig, user="matcher")
    poll(lambda: is_ready(url))

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
    process = subprocess.Popen(command, cwd=build.path, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/health/liveness", timeout=10).status_code == 200
        assert requests.get(f"{url}/health/readiness", timeout=10).status_code == 503
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
