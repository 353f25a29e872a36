"""kubectl 1.32 against the stand-in, as a subprocess with its own kubeconfig and cache."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from amtd_stack.apiserver import ApiServer

from .helpers import CRD_DIR, ROOT, poll, raw

KUBECTL = shutil.which("kubectl")
PHOENIX_FIXTURES = ROOT / "tests" / "unit" / "phoenix"  # upstream samples, kept in the repo
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """Run kubectl with the test kubeconfig; fails the test on a non-zero exit unless told."""

    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [
            str(KUBECTL),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(tmp_path / "cache"),
            *args,
        ]
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        if check:
            assert done.returncode == 0, f"{args}: {done.stderr}"
        return done

    return run


def _apply_crds(kubectl: Kubectl) -> None:
    assert list(CRD_DIR.glob("*.yaml")), "knative/crds/*.yaml must exist"
    kubectl("apply", "-f", str(CRD_DIR))


def test_get_namespaces_as_table(kubectl: Kubectl) -> None:
    out = kubectl("get", "namespaces").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "AGE"]
    assert any(line.split()[:2] == ["default", "Active"] for line in out[1:])


def test_create_namespace_apply_fixtures_and_printer_columns(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "scratch")
    _apply_crds(kubectl)
    kubectl("apply", "-f", str(PHOENIX_FIXTURES / "test-deployment.yaml"))
    kubectl("apply", "-f", str(PHOENIX_FIXTURES / "amtd-sample.yaml"))
    again = kubectl("apply", "-f", str(PHOENIX_FIXTURES / "test-deployment.yaml")).stdout
    assert "deployment.apps/nginx unchanged" in again
    event = {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "SecurityEvent",
        "metadata": {"name": "falco-1"},
        "spec": {
            "targets": ["demo/nginx-abc"],
            "rule": {
                "type": "Terminal shell in container",
                "threatLevel": "Notice",
                "source": "FalcoIntegrator",
            },
            "description": "shell",
        },
    }
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(event))
    lines = kubectl("get", "securityevents").stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["NAME", "TARGET", "TYPE", "LEVEL"] and header[-1] == "AGE"
    assert lines[1].split()[:2] == ["falco-1", "demo/nginx-abc"]
    policies = kubectl("get", "adaptivemovingtargetdefenses", "-n", "demo").stdout
    assert "adaptivemovingtargetdefense-sample" in policies


def test_label_describe_and_delete_pod(kubectl: Kubectl) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    kubectl("label", "pod", "web", "quarantine=true", "app-")
    kubectl("annotate", "pod", "web", "amtd.r6security.com/note=hi")
    shown = kubectl("get", "pod", "web", "--show-labels").stdout
    assert "quarantine=true" in shown and "app=web" not in shown
    described = kubectl("describe", "pod", "web").stdout
    assert "amtd.r6security.com/note: hi" in described
    poll(lambda: "Running" in kubectl("get", "pod", "web").stdout)
    kubectl("delete", "pod", "web")
    gone = kubectl("get", "pod", "web", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_get_pods_shows_ready_and_status(kubectl: Kubectl, apiserver: ApiServer) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            },
        },
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(deployment))

    def two_running() -> bool:
        rows = kubectl("get", "pods", "-l", "app=nginx", "--no-headers").stdout.splitlines()
        return len(rows) == 2 and all(r.split()[1:3] == ["1/1", "Running"] for r in rows)

    poll(two_running)
    rollout = kubectl("get", "deployment", "nginx", "-o", "jsonpath={.status.readyReplicas}")
    assert rollout.stdout == "2"
    users = {r.user for r in apiserver.requests}
    assert users == {"test"}


def test_typed_generators_send_protobuf_we_understand(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    kubectl("create", "namespace", "scratch")
    kubectl("create", "configmap", "cm", "-n", "scratch", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "s", "-n", "scratch", "--from-literal=k=v")
    kubectl("create", "serviceaccount", "sa", "-n", "scratch")
    assert kubectl("get", "ns", "scratch", "-o", "jsonpath={.status.phase}").stdout == "Active"
    data = kubectl("get", "cm", "cm", "-n", "scratch", "-o", "jsonpath={.data.a}").stdout
    assert data == "b"
    secret = kubectl("get", "secret", "s", "-n", "scratch", "-o", "jsonpath={.data.k}").stdout
    assert secret == "dg=="  # base64 of "v"
    assert kubectl("get", "sa", "-n", "scratch", "-o", "name").stdout.strip() == "serviceaccount/sa"
    refused = kubectl("create", "pdb", "p", "--selector=app=x", "--min-available=1", check=False)
    assert refused.returncode != 0
    assert "not understood for kind 'PodDisruptionBudget'" in refused.stderr


def test_lists_come_in_pages_that_kubectl_follows(
    kubectl: Kubectl, core: client.CoreV1Api, apiserver: ApiServer
) -> None:
    kubectl("create", "namespace", "paged")
    for number in range(5):
        spec = {"containers": [{"name": "a", "image": "x"}]}
        core.create_namespaced_pod("paged", {"metadata": {"name": f"p{number}"}, "spec": spec})
    first = core.list_namespaced_pod("paged", limit=2)
    assert [p.metadata.name for p in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_pod("paged", limit=10, _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == [
        "p2",
        "p3",
        "p4",
    ] and not rest.metadata._continue
    names = kubectl("get", "pods", "-n", "paged", "--chunk-size=2", "-o", "name").stdout.split()
    assert names == [f"pod/p{number}" for number in range(5)]
    forged = raw(apiserver.url, "GET", "/api/v1/namespaces/paged/pods?continue=forged")
    assert (forged.status_code, forged.json()["reason"]) == (400, "BadRequest")
