"""Scenarios for the executor and release tests: the API stand-in, workloads, SecurityEvents.

Everything reaches Kubernetes through the official client (wrapped by ``amtd.kubeapi.Cluster``)
over HTTP to the stand-in. A SecurityEvent is created with the matcher's decisions already in its
status, as the matcher leaves it, and the matching ``action.requested`` event is built from them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from flask.testing import FlaskClient
from kubernetes import config

from amtd import kubeapi
from amtd.actionevents import ActionRequest, ActionStep, SecurityEventRef, to_request_attributes
from amtd.deciding import make_step_id
from amtd.kubeapi import PODS, SECURITY_EVENTS, Cluster, Resource
from amtd.securityevents import Decision, SecurityEventStatus
from amtd.statuses import record_decisions
from amtd.targets import parse_target
from amtd_stack.apiserver import ApiServer, start_apiserver
from support.cloudevents import as_binary, as_structured
from support.functions import ROOT

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
NOW = "2026-11-26T12:00:00Z"
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, deadline_s: float = 20.0) -> T:
    """Poll until ``probe`` returns something truthy; fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.05)


def connect(kubeconfig: Path) -> Cluster:
    """A Cluster over the official client, configured from a kubeconfig file."""
    return Cluster(config.new_client_from_config(config_file=str(kubeconfig)))


@dataclass
class Stand:
    """A running stand-in, the test's own connection and a kubeconfig per identity."""

    server: ApiServer
    cluster: Cluster
    folder: Path

    def kubeconfig(self, user: str) -> Path:
        """A kubeconfig file whose identity is ``user``."""
        return self.server.write_kubeconfig(self.folder / f"kubeconfig-{user}", user=user)

    def calls_by(self, user: str) -> set[tuple[str, str, str, str]]:
        """(group, resource, subresource, verb) of every request ``user`` sent."""
        return {
            (record.api_group, record.resource, record.subresource, record.verb)
            for record in self.server.requests
            if record.user == user
        }


@contextlib.contextmanager
def run_stand(folder: Path) -> Iterator[Stand]:
    """Start the stand-in with our CRDs installed; stopped when the block ends."""
    server = start_apiserver(workloads=True)
    try:
        cluster = connect(server.write_kubeconfig(folder / "kubeconfig-test", user="test"))
        for path in sorted((ROOT / "knative" / "crds").glob("*.yaml")):
            cluster.create(CRDS, yaml.safe_load(path.read_text()))
        wait_for(lambda: cluster.request("GET", SECURITY_EVENTS.path()), "the CRDs to be served")
        yield Stand(server, cluster, folder)
    finally:
        server.stop()


@contextlib.contextmanager
def use_identity(stand: Stand, monkeypatch: Any, user: str) -> Iterator[Path]:
    """Point in-process functions at the stand-in as ``user`` (fresh shared connection)."""
    path = stand.kubeconfig(user)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeapi.reset_shared_cluster()
    try:
        yield path
    finally:
        kubeapi.reset_shared_cluster()


def create_namespace(cluster: Cluster, name: str) -> None:
    """Create a namespace."""
    cluster.create(NAMESPACES, {"metadata": {"name": name}})


def list_pods(cluster: Cluster, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """Running, not terminating pods (optionally by label selector)."""
    return [
        pod
        for pod in cluster.list(PODS, namespace, label_selector=selector)
        if pod.get("status", {}).get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
    ]


def create_deployment(
    cluster: Cluster, namespace: str, name: str, replicas: int = 2
) -> list[dict[str, Any]]:
    """A Deployment of ``replicas`` pods labelled ``app=<name>``; returns them once Running."""
    labels = {"app": name, "mtdSecured": "true"}
    cluster.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        },
        namespace,
    )
    return wait_for_pods(cluster, namespace, f"app={name}", replicas)


def wait_for_pods(
    cluster: Cluster, namespace: str, selector: str, count: int
) -> list[dict[str, Any]]:
    """Wait until exactly ``count`` running pods match the selector; returns them."""

    def probe() -> list[dict[str, Any]] | None:
        pods = list_pods(cluster, namespace, selector)
        return pods if len(pods) == count else None

    return wait_for(probe, f"{count} running pods {selector} in {namespace}")


def create_standalone_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """A pod without a controller owner."""
    body = {
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    return cluster.create(PODS, body, namespace)


def create_security_event(
    cluster: Cluster, name: str, pods: Sequence[Mapping[str, Any]], action: str,
    **options: Any,
) -> ActionRequest:  # fmt: skip
    """A SecurityEvent targeting ``pods``, decided (status) as the matcher leaves it.

    ``options``: ``parameters``, ``dry_run``, ``allow_standalone_pods``, ``targets`` (override
    the target texts, e.g. for pods that do not exist).
    """
    targets = options.get("targets") or [
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}" for pod in pods
    ]
    body = {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "SecurityEvent",
        "metadata": {"name": name},
        "spec": {"targets": targets, "rule": {"type": "test"}, "description": "executor test"},
    }
    created = cluster.create(SECURITY_EVENTS, body)
    ref = SecurityEventRef(
        name=name, uid=created["metadata"]["uid"], generation=created["metadata"]["generation"]
    )
    uids = [pod["metadata"]["uid"] for pod in pods] or [""] * len(targets)
    decisions = [
        make_decision(ref, text, uid, action, options)
        for text, uid in zip(targets, uids, strict=True)
    ]

    def decide(current: dict[str, Any]) -> dict[str, Any] | None:
        status = SecurityEventStatus.model_validate(current.get("status") or {})
        return record_decisions(status, ref.generation, decisions, [])

    cluster.mutate_status(SECURITY_EVENTS, name, decide)
    steps = [ActionStep.from_decision(decision) for decision in decisions]
    return ActionRequest(security_event=ref, steps=steps)


def make_decision(
    ref: SecurityEventRef, target: str, uid: str, action: str, options: Mapping[str, Any]
) -> Decision:
    """A Matched decision for one target."""
    return Decision(
        target=target,
        outcome="Matched",
        step_id=make_step_id(ref.uid, ref.generation, parse_target(target)),
        pod_uid=uid,
        policy=f"{parse_target(target).namespace}/policy",
        rule_index=0,
        rule={"type": "test"},
        score=1,
        action=action,
        parameters=options.get("parameters", {}),
        dry_run=options.get("dry_run", False),
        allow_standalone_pods=options.get("allow_standalone_pods", False),
        reason="BestMatch",
        decided_at=NOW,
    )


def event_of(request: ActionRequest, structured: bool = False) -> tuple[dict[str, str], bytes]:
    """The HTTP headers and body of the request's ``action.requested`` CloudEvent."""
    data = request.model_dump(by_alias=True, mode="json")
    encode = as_structured if structured else as_binary
    return encode(to_request_attributes(request), data)


def post_event(client: FlaskClient, request: ActionRequest, structured: bool = False) -> Any:
    """POST the request's event to an in-process function; returns the Flask response."""
    headers, body = event_of(request, structured)
    return client.post("/", headers=headers, data=body)


def read_status(cluster: Cluster, name: str) -> SecurityEventStatus:
    """The SecurityEvent's current status."""
    found = cluster.get(SECURITY_EVENTS, name)
    return SecurityEventStatus.model_validate(found.get("status") or {})


def list_events_about(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """core/v1 Events in ``namespace`` whose involvedObject is named ``name``."""
    events = cluster.list(kubeapi.EVENTS, namespace)
    return [event for event in events if event["involvedObject"].get("name") == name]
