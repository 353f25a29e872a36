"""The bottom layer: the API server stand-in as tests set it up (CRDs, namespaces, identities).

``start_stand`` starts one and ``open_stand`` sets up a running one as a :class:`Stand`;
``open_world`` and ``run_module_world`` also point in-process functions at it. Workloads
(pods, Deployments, defended workloads) are made on it here. Everything reaches Kubernetes
through the official client (wrapped by ``amtd.kube.api.Cluster``) over HTTP to the stand-in
(``amtd_stack.apiserver``), whose workload emulation runs the pods.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from amtd.decide.indexing import reset_warm_policy_indexes
from amtd.kube import api as kubeapi
from amtd.kube.api import PODS, POLICIES, SECURITY_EVENTS, Cluster, Resource
from amtd.kube.apierrors import ConflictError
from amtd.model.objects import Object
from amtd_stack.apiserver import ApiServer, start_apiserver
from amtd_stack.manifests import load_manifests
from amtd_stack.running.kubeclients import apply_objects
from support.builders import build_deployment, create_policy
from support.functions import ROOT
from support.signing import give_matcher_keys
from support.waiting import wait_for

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
PHOENIX = ROOT / "tests" / "unit" / "phoenix"  # Phoenix's config/samples


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


FUNCTIONS_NAMESPACE = "amtd-system"  # where the functions' ServiceAccounts live


def write_identity(server: ApiServer, path: Path, user: str) -> Path:
    """A kubeconfig acting as ``user``: on an enforcing stand-in ServiceAccount
    amtd-system/``user`` with its own token, as the local stack gives each function."""
    namespace = FUNCTIONS_NAMESPACE if server.security.enforcing else ""
    return server.write_kubeconfig(path, user, namespace)


def apply_rbac(kubeconfig: Path, cluster: Cluster) -> None:
    """The committed knative/rbac/ (namespace amtd-system first), applied as an administrator."""
    ensure_namespace(cluster, FUNCTIONS_NAMESPACE)
    manifests = load_manifests(ROOT / "knative" / "rbac")
    apply_objects(kubeconfig, [(m.obj, str(m.path)) for m in manifests])


@contextlib.contextmanager
def connect_functions(
    server: ApiServer, folder: Path, user: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point in-process functions at the stand-in as ``user`` (fresh shared connection)."""
    path = write_identity(server, folder / f"kubeconfig-{user}", user)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    give_matcher_keys(monkeypatch)
    reset_connections()
    try:
        yield path
    finally:
        reset_connections()


def reset_connections() -> None:
    """Forget the in-process functions' shared connection and the matcher's AMTD watch (it
    would go on with whatever identity the next test gives the process)."""
    kubeapi.reset_shared_cluster()
    reset_warm_policy_indexes()


@dataclass
class Stand:
    """A running stand-in, the test's own connection (user ``test``), a folder for kubeconfigs."""

    server: ApiServer
    cluster: Cluster
    folder: Path

    def kubeconfig(self, user: str) -> Path:
        """A kubeconfig file whose identity is ``user`` (see :func:`write_identity`)."""
        return write_identity(self.server, self.folder / f"kubeconfig-{user}", user)

    def connect_functions(
        self, user: str, monkeypatch: pytest.MonkeyPatch
    ) -> contextlib.AbstractContextManager[Path]:
        """Point in-process functions at this stand-in as ``user`` (fresh shared connection)."""
        return connect_functions(self.server, self.folder, user, monkeypatch)

    def calls_by(self, user: str) -> set[tuple[str, str, str, str]]:
        """(group, resource, subresource, verb) of every request ``user`` sent."""
        return {
            (record.api_group, record.resource, record.subresource, record.verb)
            for record in self.server.requests
            if record.user == user
        }


@contextlib.contextmanager
def start_stand(
    folder: Path, namespaces: Sequence[str] = ("shop",), workloads: bool = True,
    rbac: bool = False,
) -> Iterator[Stand]:  # fmt: skip
    """Start the stand-in and set it up as :func:`open_stand` does; stopped when the block ends.
    With ``rbac`` it enforces tokens and the committed knative/rbac/ as the local stack does."""
    with (
        start_apiserver(workloads=workloads, authorization=rbac) as server,
        open_stand(server, folder, namespaces) as stand,
    ):
        if rbac:
            apply_rbac(folder / "kubeconfig-test", stand.cluster)
        yield stand


@contextlib.contextmanager
def open_stand(
    server: ApiServer, folder: Path, namespaces: Sequence[str] = ("shop",)
) -> Iterator[Stand]:
    """A running stand-in with our CRDs and ``namespaces``, the test connected as ``test``."""
    cluster = connect(server.write_kubeconfig(folder / "kubeconfig-test", user="test"))
    try:
        install_crds(cluster, namespaces)
        yield Stand(server, cluster, folder)
    finally:
        cluster.api_client.close()


@contextlib.contextmanager
def open_world(
    server: ApiServer, kubeconfig: Path, user: str, monkeypatch: pytest.MonkeyPatch,
    namespaces: Sequence[str] = ("shop",),
) -> Iterator[Cluster]:  # fmt: skip
    """:func:`open_stand` next to ``kubeconfig``; in-process functions act as ``user``."""
    with (
        open_stand(server, kubeconfig.parent, namespaces) as stand,
        stand.connect_functions(user, monkeypatch),
    ):
        yield stand.cluster


@contextlib.contextmanager
def open_phoenix_sample(
    server: ApiServer, kubeconfig: Path, user: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    """:func:`open_world` (namespaces amtd-system and shop too) with Phoenix's sample installed,
    its two pods running."""
    with open_world(server, kubeconfig, user, monkeypatch, ("amtd-system", "shop")) as own:
        install_phoenix_sample(own)
        yield own


@contextlib.contextmanager
def run_module_world(
    user: str, workloads: bool = False
) -> Iterator[tuple[ApiServer, Cluster, pytest.MonkeyPatch]]:
    """For a module-scoped fixture: its own :func:`start_stand`; functions act as ``user``.

    The MonkeyPatch (undone at the end) is the fixture's, as ``monkeypatch`` is a test's.
    """
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        tempfile.TemporaryDirectory() as folder,
        start_stand(Path(folder), workloads=workloads) as stand,
        stand.connect_functions(user, monkeypatch),
    ):
        yield stand.server, stand.cluster, monkeypatch


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
    deployment = build_deployment(
        name, replicas, nginx(), pod_labels={"mtdSecured": "true"}, pod_annotations=annotations,
        namespace=namespace,
    )  # fmt: skip
    cluster.create(DEPLOYMENTS, deployment, namespace)
    return wait_for_pods(cluster, namespace, f"app={name}", replicas)


def deploy_defended_workload(
    cluster: Cluster, namespace: str, app: str, replicas: int, action: str
) -> list[Object]:
    """A namespace (once), a Deployment and an AMTD whose fallback rule is ``action``; pods."""
    ensure_namespace(cluster, namespace)
    pods = create_deployment(cluster, namespace, app, replicas)
    strategy = [({"type": "default"}, action)]
    create_policy(cluster, namespace, strategy, name=f"{app}-defence", pod_selector={"app": app})
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
