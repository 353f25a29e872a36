"""Helpers for the ingest and timer tests: the stand-in with our CRDs, alert fixtures, requests.

Alert fixtures are the tools' real formats (REFERENCE §4.1, §4.2, §4.4). Everything reaches
Kubernetes through the official client over HTTP to the API server stand-in.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config

from amtd import kubeapi
from amtd.kubeapi import PODS, SECURITY_EVENTS, Cluster, Resource

ROOT = Path(__file__).resolve().parents[2]
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
TOKEN = "s3cret-ingest-token"
T = TypeVar("T")

FALCO_ALERT: dict[str, Any] = {
    "uuid": "5c0e9d2a-3f4b-4a8e-9d1c-7b2e6f0a1c34",
    "output": "09:12:44.318220471: Notice A shell was spawned in a container with an attached "
    "terminal (user=root k8s.ns=shop k8s.pod=cart-6b8f7d9c4-hx2lp shell=sh parent=runc "
    "terminal=34816)",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "time": "2025-03-14T09:12:44.318220471Z",
    "output_fields": {
        "container.id": "3f9a1c2b7d10",
        "evt.time": 1741943564318220471,
        "k8s.ns.name": "shop",
        "k8s.pod.name": "cart-6b8f7d9c4-hx2lp",
        "proc.tty": 34816,
        "user.name": "root",
    },
    "source": "syscall",
    "tags": ["T1059", "container", "mitre_execution", "shell"],
    "hostname": "worker-2",
}

KUBEARMOR_ALERT: dict[str, Any] = {
    "Timestamp": 1741943600,
    "UpdatedTime": "2025-03-14T09:13:20.512734Z",
    "ClusterName": "default",
    "HostName": "worker-2",
    "NamespaceName": "shop",
    "Owner": {"Ref": "Deployment", "Name": "cart", "Namespace": "shop"},
    "PodName": "cart-6b8f7d9c4-hx2lp",
    "Labels": "app=cart",
    "ContainerID": "3f9a1c2b7d10e4a6b2c8",
    "ContainerName": "nginx",
    "ContainerImage": "docker.io/library/nginx:1.25.1",
    "PID": 37,
    "UID": 0,
    "ParentProcessName": "/usr/bin/bash",
    "ProcessName": "/usr/bin/apt",
    "PolicyName": "block-pkg-mgmt-tools-exec",
    "Severity": "1",
    "Tags": "NIST,NIST_800-53_CM-7",
    "ATags": ["NIST", "NIST_800-53_CM-7"],
    "Message": "package manager execution blocked",
    "Type": "MatchedPolicy",
    "Source": "/usr/bin/bash -c apt update",
    "Operation": "Process",
    "Resource": "/usr/bin/apt update",
    "Data": "syscall=SYS_EXECVE",
    "Enforcer": "AppArmor",
    "Action": "Block",
    "Result": "Permission denied",
}

# Falcosidekick's binary-mode CloudEvent headers (REFERENCE §4.2), values percent-encoded.
FALCO_CE_HEADERS = {
    "Content-Type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "0d6a3a8e-5b1f-4c2e-9a77-41f0c2d9be10",
    "ce-source": "https://falco.org",
    "ce-type": "falco.rule.output.v1",
    "ce-time": "2025-03-14T09:12:44.318220471Z",
    "ce-priority": "Notice",
    "ce-rule": "Terminal%20shell%20in%20container",
    "ce-eventsource": "syscall",
    "ce-hostname": "worker-2",
}


def falco_alert(**changes: Any) -> dict[str, Any]:
    """A copy of the §4.1 alert with top-level changes (None removes a key)."""
    alert = copy.deepcopy(FALCO_ALERT)
    for key, value in changes.items():
        if value is None:
            alert.pop(key, None)
        else:
            alert[key] = value
    return alert


def kubearmor_alert(**changes: Any) -> dict[str, Any]:
    """A copy of the §4.4 alert with changes (None removes a key)."""
    alert = copy.deepcopy(KUBEARMOR_ALERT)
    for key, value in changes.items():
        if value is None:
            alert.pop(key, None)
        else:
            alert[key] = value
    return alert


def bearer(token: str = TOKEN) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def poll(probe: Callable[[], T | None], what: str, deadline_s: float = 20.0) -> T:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.05)
    return value


def connect(kubeconfig: Path) -> Cluster:
    """The test's own Cluster on the official client."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return Cluster(client.ApiClient(configuration))


def install_crds(cluster: Cluster, namespaces: tuple[str, ...] = ("shop",)) -> None:
    """Our CRDs (served at once) and the namespaces the fixtures use."""
    for path in sorted((ROOT / "knative" / "crds").glob("*.yaml")):
        cluster.create(CRDS, yaml.safe_load(path.read_text()))
    poll(lambda: cluster.request("GET", SECURITY_EVENTS.path()), "the CRDs to be served")
    for name in namespaces:
        cluster.create(NAMESPACES, {"metadata": {"name": name}})


@contextmanager
def functions_connected(
    apiserver: Any, folder: Path, user: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point in-process functions at the stand-in as ``user`` (fresh shared connection)."""
    path = apiserver.write_kubeconfig(folder / f"{user}.kubeconfig", user=user)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeapi.reset_shared_cluster()
    try:
        yield path
    finally:
        kubeapi.reset_shared_cluster()


def security_events(cluster: Cluster) -> list[dict[str, Any]]:
    """Every SecurityEvent, by name."""
    return sorted(cluster.list(SECURITY_EVENTS), key=lambda item: item["metadata"]["name"])


def create_pod(
    cluster: Cluster, namespace: str, name: str, annotations: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A standalone pod (the stand-in makes it Running)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    if finalizers:
        metadata["finalizers"] = finalizers
    body = {"metadata": metadata, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
    return cluster.create(PODS, body, namespace)
