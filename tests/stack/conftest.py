"""Fixtures for the API server stand-in tests: official clients bound to the `kubeconfig`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from .helpers import project_crds


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """An official ApiClient configured from the test kubeconfig."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api over real HTTP."""
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    """AppsV1Api over real HTTP."""
    return client.AppsV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    """CustomObjectsApi over real HTTP."""
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def crds(api_client: client.ApiClient) -> list[dict[str, Any]]:
    """The project's CRDs, created through the API (so the types are registered)."""
    ext = client.ApiextensionsV1Api(api_client)
    docs = project_crds()
    for doc in docs:
        ext.create_custom_resource_definition(doc)
    return docs


KubectlRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl_run(kubeconfig: Path, tmp_path: Path) -> KubectlRun:
    """Run the real kubectl with the test kubeconfig and its own cache; a non-zero exit fails
    the test unless ``check=False``."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed on this machine")

    def run(*args: str, stdin: str | None = None, check: bool = True) -> Any:
        base = [binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "kcache")]
        done = subprocess.run(
            [*base, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        assert not check or done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    return run


BATTERY_FILE = "test_kubectl_battery.py"
_battery: dict[str, bool] = {}  # case -> passed (an xfail, skip or error counts as not passed)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note each kubectl battery case's outcome for the summary line."""
    if BATTERY_FILE not in report.nodeid or (report.when != "call" and report.passed):
        return
    passed = report.when == "call" and report.passed and not hasattr(report, "wasxfail")
    _battery[report.nodeid] = passed and _battery.get(report.nodeid, True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """`kubectl battery: N/M passed` when battery cases ran."""
    if _battery:
        passed = sum(_battery.values())
        terminalreporter.write_line(f"kubectl battery: {passed}/{len(_battery)} passed")
