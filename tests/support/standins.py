"""The API server stand-in as tests set it up: our CRDs, namespaces, workloads, identities.

Everything reaches Kubernetes through the official client (wrapped by ``amtd.kube.api.Cluster``)
over HTTP to the stand-in (``amtd_stack.apiserver``), whose workload emulation runs the pods.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from amtd.kube import api as kubeapi
from amtd.kube.api import PODS, POLICIES, SECURITY_EVENTS, Cluster, ConflictError, Resource
from amtd_stack.apiserver import ApiServer, start_apiserver
from support.functions import ROOT
from support.waiting import wait_for

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
PHOENIX = ROOT / "tests" / "unit" / "phoenix"  # copies of /work/shared/fixtures/phoenix

Object = dict[str, Any]


def connect(kubeconfig: Path) -> Cluster:
    """The test's own Cluster on the official client, configured from a kubeconfig file."""
    return Cluster(config.new_client_from_config(config_file=str(kubeconfig)))


def install_crds(cluster: Cluster, namespaces: Sequence[str] = ()) -> None:
    """Our CRDs (waited for until SecurityEvents are served), then ``namespaces``."""
    for path in sorted((ROOT / "knative" / "crds").glob("*.yaml")):
        cluster.create(CRDS, yaml.safe_load(path.read_text()))
    wait_for(lambda: cluster.request("GET", SECURITY_EVENTS.path()), "the CRDs to be served")
    for name in namespaces:
        create_namespace(cluster, name)


def create_namespace(cluster: Cluster, name: str) -> None:
    """Create a namespace."""
    cluster.create(NAMESPACES, {"metadata": {"name": name}})


def ensure_namespace(cluster: Cluster, name: str) -> None:
    """Create a namespace unless it exists (kube-system always does)."""
    with contextlib.suppress(ConflictError):
        create_namespace(cluster, name)


@contextlib.contextmanager
def connect_functions(
    server: ApiServer, folder: Path, user: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point in-process functions at the stand-in as ``user`` (fresh shared connection)."""
    path = server.write_kubeconfig(folder / f"kubeconfig-{user}", user=user)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeapi.reset_shared_cluster()
    try:
        yield path
    finally:
        kubeapi.reset_shared_cluster()


@contextlib.contextmanager
def open_world(
    server: ApiServer, kubeconfig: Path, user: str, monkeypatch: pytest.MonkeyPatch,
    namespaces: Sequence[str] = ("shop",),
) -> Iterator[Cluster]:  # fmt: skip
    """The test's Cluster with our CRDs and ``namespaces``; in-process functions act as ``user``."""
    own = connect(kubeconfig)
    try:
        install_crds(own, namespaces)
        with connect_functions(server, kubeconfig.parent, user, monkeypatch):
            yield own
    finally:
        own.api_client.close()


@contextlib.contextmanager
def run_module_world(
    user: str, workloads: bool = False
) -> Iterator[tuple[ApiServer, Cluster, pytest.MonkeyPatch]]:
    """For a module-scoped fixture: its own stand-in, set up by :func:`open_world`.

    The MonkeyPatch (undone at the end) is the fixture's, as ``monkeypatch`` is a test's.
    """
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        tempfile.TemporaryDirectory() as folder,
        start_apiserver(workloads=workloads) as server,
    ):
        kubeconfig = server.write_kubeconfig(Path(folder) / "kubeconfig", user="test")
        with open_world(server, kubeconfig, user, monkeypatch) as own:
            yield server, own, monkeypatch


def nginx() -> Object:
    """The container of every test workload (Phoenix's sample's)."""
    return {"name": "nginx", "image": "nginx"}


def create_pod(
    cluster: Cluster, namespace: str, name: str, annotations: Mapping[str, str] | None = None,
    **metadata: Any,
) -> Object:  # fmt: skip
    """A pod without a controller (the stand-in runs it); ``metadata``: labels, finalizers..."""
    meta = {"name": name, "namespace": namespace, "annotations": annotations, **metadata}
    body = {"metadata": {key: value for key, value in meta.items() if value}}
    return cluster.create(PODS, {**body, "spec": {"containers": [nginx()]}}, namespace)


def create_deployment(
    cluster: Cluster, namespace: str, name: str, replicas: int = 2,
    annotations: Mapping[str, str] | None = None,
) -> list[Object]:  # fmt: skip
    """Phoenix's sample Deployment shape (``app=<name>``, ``mtdSecured``); its Running pods."""
    template_meta: Object = {"labels": {"app": name, "mtdSecured": "true"}}
    if annotations:
        template_meta["annotations"] = dict(annotations)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template_meta, "spec": {"containers": [nginx()]}},
        },
    }
    cluster.create(DEPLOYMENTS, deployment, namespace)
    return wait_for_pods(cluster, namespace, f"app={name}", replicas)


def deploy_defended_workload(
    cluster: Cluster, namespace: str, app: str, replicas: int, action: str
) -> list[Object]:
    """A namespace (once), a Deployment and an AMTD whose fallback rule is ``action``; pods."""
    ensure_namespace(cluster, namespace)
    pods = create_deployment(cluster, namespace, app, replicas)
    strategy = [{"rule": {"type": "default"}, "action": {action: {}}}]
    policy = {"apiVersion": "amtd.r6security.com/v1beta1", "kind": "AdaptiveMovingTargetDefense",
              "metadata": {"name": f"{app}-defence", "namespace": namespace},
              "spec": {"podSelector": {"app": app}, "strategy": strategy}}  # fmt: skip
    cluster.create(POLICIES, policy, namespace)
    return pods


def list_pods(cluster: Cluster, namespace: str, selector: str = "") -> list[Object]:
    """Running, not terminating pods (optionally by label selector), by name."""
    pods = [
        pod
        for pod in cluster.list(PODS, namespace, label_selector=selector)
        if pod.get("status", {}).get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
    ]
    return sorted(pods, key=lambda pod: str(pod["metadata"]["name"]))


def wait_for_pods(
    cluster: Cluster, namespace: str, selector: str, count: int, excluding: Sequence[str] = ()
) -> list[Object]:
    """Wait until exactly ``count`` running pods match and none is named in ``excluding``."""

    def probe() -> list[Object] | None:
        pods = list_pods(cluster, namespace, selector)
        names = {pod["metadata"]["name"] for pod in pods}
        return pods if len(pods) == count and not names & set(excluding) else None

    excluded = f" without {list(excluding)}" if excluding else ""
    return wait_for(probe, f"{count} running pods {selector} in {namespace}{excluded}")


def install_phoenix_sample(cluster: Cluster) -> list[Object]:
    """Phoenix's sample Deployment and AMTD in ``demo`` (CRDs installed); its 2 Running pods."""
    namespace, deployment = yaml.safe_load_all((PHOENIX / "test-deployment.yaml").read_text())
    cluster.create(NAMESPACES, namespace)
    cluster.create(DEPLOYMENTS, deployment, "demo")
    policy = yaml.safe_load((PHOENIX / "amtd-sample.yaml").read_text())
    cluster.create(POLICIES, policy, "demo")
    return wait_for_pods(cluster, "demo", "app=nginx", deployment["spec"]["replicas"])
