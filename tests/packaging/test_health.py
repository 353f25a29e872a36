"""Every function answers the probes func's deployer configures (func.yaml healthEndpoints).

Liveness is always 200. Readiness is 503 while no Kubernetes client configuration can be loaded
(no kubeconfig, not in a pod), and 200 once one can: a pod that cannot reach the API is not
sent traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amtd.kube.api import reset_shared_cluster
from support.functions import load_function_client

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(
    str(p.parent.relative_to(ROOT / "functions")) for p in ROOT.glob("functions/**/func.yaml")
)
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: probe}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def kubeconfig_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """KUBECONFIG names a file that does not exist yet; not in a pod; ingest auth configured."""
    path = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("INGEST_TOKEN", "a-token-for-the-probe-test")
    reset_shared_cluster()
    yield path
    reset_shared_cluster()


@pytest.mark.parametrize("folder", FOLDERS)
def test_probes_follow_the_kubernetes_configuration(folder: str, kubeconfig_path: Path) -> None:
    assert (ROOT / "functions" / folder / "main.py").is_file(), f"functions/{folder}/main.py"
    client = load_function_client(folder)
    assert client.get("/health/liveness").status_code == 200
    not_ready = client.get("/health/readiness")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["error"]
    kubeconfig_path.write_text(KUBECONFIG)
    assert client.get("/health/readiness").status_code == 200
    assert client.get("/health/liveness").status_code == 200
