"""Builders of the objects and alerts tests send: SecurityEvents, AMTD policies, tool alerts.

Each ``make_*`` / ``*_alert`` is a pure dict builder with keyword overrides; ``create_*`` writes
what a builder made through the official client (``amtd.kube.api.Cluster``). The alert
defaults are the tools' real formats (docs/ingest.md): a Falco ``http_output`` alert as
Falcosidekick forwards it, a KubeArmor ``Alert`` as the relay prints it, an Alertmanager
webhook notification as Alertmanager posts it. Transports (a request for an ingest function, a
CloudEvent for the Broker) stay with the tests that send them.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from amtd.kube.api import POLICIES, SECURITY_EVENTS, Cluster
from amtd.model.objects import Object

API_VERSION = "amtd.r6security.com/v1beta1"
SHELL_RULE = "Terminal shell in container"

# SecurityEvents and policies


def make_security_event(
    name: str | None = None,
    *,
    targets: Sequence[str] = ("demo/web-1",),
    pods: Sequence[Mapping[str, Any]] = (),
    rule_type: str = "test",
    threat_level: str | None = None,
    source: str | None = None,
    rule: Mapping[str, Any] | None = None,
    description: str | None = "made by a test",
    spec: Mapping[str, Any] | None = None,
) -> Object:
    """A SecurityEvent as an integrator writes it (a random ``test-...`` name unless given).

    ``pods`` (objects as the API returns them) give the targets instead of ``targets``. The rule
    is ``rule`` if given (any shape), else ``rule_type`` with ``threat_level`` and ``source``
    when given. ``description`` None leaves it out; ``spec`` adds or replaces spec fields.
    """
    if rule is None:
        rule = drop_none({"type": rule_type, "threatLevel": threat_level, "source": source})
    texts = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods] or targets
    body = drop_none({"targets": list(texts), "rule": dict(rule), "description": description})
    return {
        "apiVersion": API_VERSION,
        "kind": "SecurityEvent",
        "metadata": {"name": name or f"test-{uuid.uuid4().hex[:10]}"},
        "spec": {**body, **(spec or {})},
    }


def create_security_event(cluster: Cluster, name: str | None = None, **options: Any) -> Object:
    """Create :func:`make_security_event` (same ``options``); the object the API returns."""
    return cluster.create(SECURITY_EVENTS, make_security_event(name, **options))


def make_policy(
    namespace: str,
    strategy: Sequence[tuple[Mapping[str, Any], str]] = (({"type": "default"}, "delete"),),
    *,
    name: str = "defence",
    pod_selector: Mapping[str, str] | None = None,
) -> Object:
    """An AdaptiveMovingTargetDefense; ``strategy`` is ``(rule, action)`` pairs.

    It covers ``mtdSecured: "true"`` pods unless ``pod_selector`` says otherwise.
    """
    return {
        "apiVersion": API_VERSION,
        "kind": "AdaptiveMovingTargetDefense",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": dict({"mtdSecured": "true"} if pod_selector is None else pod_selector),
            "strategy": [{"rule": dict(rule), "action": {action: {}}} for rule, action in strategy],
        },
    }


def create_policy(cluster: Cluster, namespace: str, *args: Any, **options: Any) -> Object:
    """Create :func:`make_policy` (same arguments); the object the API returns."""
    return cluster.create(POLICIES, make_policy(namespace, *args, **options), namespace)


# Alerts

FALCO_OUTPUT = (
    "{clock}: Notice A shell was spawned in a container with an attached terminal "
    "(user=root k8s.ns={namespace} k8s.pod={pod} shell=sh parent=runc terminal=34816)"
)

FALCO_ALERT: Object = {
    "uuid": "5c0e9d2a-3f4b-4a8e-9d1c-7b2e6f0a1c34",
    "output": FALCO_OUTPUT.format(
        clock="09:12:44.318220471", namespace="shop", pod="cart-6b8f7d9c4-hx2lp"
    ),
    "priority": "Notice",
    "rule": SHELL_RULE,
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

KUBEARMOR_ALERT: Object = {
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


def falco_alert(
    namespace: str = "shop",
    pod: str = "cart-6b8f7d9c4-hx2lp",
    *,
    at: datetime | None = None,
    **changes: Any,
) -> Object:
    """:data:`FALCO_ALERT` about ``namespace/pod``, raised ``at`` a time if given (its own
    otherwise), with top-level ``changes`` (None removes a key, e.g. ``uuid=None`` for Falco's
    own ``http_output``, which has none)."""
    alert = copy.deepcopy(FALCO_ALERT)
    clock = alert["output"].split(": ", 1)[0]
    fields = alert["output_fields"]
    if at is not None:
        clock = at.strftime("%H:%M:%S.%f") + "000"
        alert["time"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        fields["evt.time"] = int(at.timestamp()) * 10**9 + at.microsecond * 1000
    alert["output"] = FALCO_OUTPUT.format(clock=clock, namespace=namespace, pod=pod)
    fields.update({"k8s.ns.name": namespace, "k8s.pod.name": pod})
    return change_copy(alert, changes)


def kubearmor_alert(
    namespace: str = "shop",
    pod: str = "cart-6b8f7d9c4-hx2lp",
    *,
    at: datetime | None = None,
    **changes: Any,
) -> Object:
    """:data:`KUBEARMOR_ALERT` about ``namespace/pod``, raised ``at`` a time if given (its own
    otherwise), with top-level ``changes`` (None removes a key)."""
    alert = copy.deepcopy(KUBEARMOR_ALERT)
    alert.update({"NamespaceName": namespace, "PodName": pod})
    alert["Owner"]["Namespace"] = namespace
    if at is not None:
        alert["Timestamp"] = int(at.timestamp())
        alert["UpdatedTime"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return change_copy(alert, changes)


# What Alertmanager 0.27 posts to a webhook receiver, byte for byte: Go's encoder sorts label keys,
# escapes "&" as \u0026 and ends the body with a newline. A group of three alerts: one firing
# about a pod (its ``rule`` and ``priority`` labels override ``alertname`` and ``severity``), one
# resolved, one about a node (no pod label).
ALERTMANAGER_WEBHOOK = (
    b'{"receiver":"amtd","status":"firing","alerts":[{"status":"firing","labels":{"alertname":'
    b'"KubePodCryptoMiner","container":"cart","namespace":"shop","pod":"cart-6b8f7d9c4-hx2lp",'
    b'"priority":"critical","rule":"crypto-miner-detected","severity":"warning"},"annotations":'
    b'{"description":"Pod shop/cart-6b8f7d9c4-hx2lp holds 3 connections to a known mining pool.",'
    b'"summary":"Crypto miner in shop/cart-6b8f7d9c4-hx2lp"},"startsAt":'
    b'"2025-03-14T09:12:44.318220471Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":'
    b'"http://prometheus-k8s-0:9090/graph?g0.expr=amtd_mining_pool_connections+%3E+0\\u0026'
    b'g0.tab=1","fingerprint":"3f6b9d2c1a0e4b57"},{"status":"resolved","labels":{"alertname":'
    b'"KubePodCryptoMiner","container":"api","namespace":"shop","pod":"api-7c9d5f6b8-2xkqz",'
    b'"severity":"warning"},"annotations":{"summary":"Crypto miner in shop/api-7c9d5f6b8-2xkqz"},'
    b'"startsAt":"2025-03-14T08:55:02.101Z","endsAt":"2025-03-14T09:10:02.101Z","generatorURL":'
    b'"http://prometheus-k8s-0:9090/graph?g0.expr=amtd_mining_pool_connections+%3E+0\\u0026'
    b'g0.tab=1","fingerprint":"a81c07e5d3f94b26"},{"status":"firing","labels":{"alertname":'
    b'"KubePodCryptoMiner","instance":"worker-2","job":"node-exporter","severity":"warning"},'
    b'"annotations":{"summary":"Mining pool traffic from node worker-2"},"startsAt":'
    b'"2025-03-14T09:12:50Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":'
    b'"http://prometheus-k8s-0:9090/graph?g0.expr=amtd_mining_pool_connections+%3E+0\\u0026'
    b'g0.tab=1","fingerprint":"5e0d94c2b7a31f68"}],"groupLabels":{"alertname":'
    b'"KubePodCryptoMiner"},"commonLabels":{"alertname":"KubePodCryptoMiner","severity":'
    b'"warning"},"commonAnnotations":{},"externalURL":"http://alertmanager-main-0:9093",'
    b'"version":"4","groupKey":"{}/{severity=~\\"warning|critical\\"}:{alertname=\\"'
    b'KubePodCryptoMiner\\"}","truncatedAlerts":0}\n'
)


def alertmanager_alert(
    namespace: str | None = "shop",
    pod: str | None = "cart-6b8f7d9c4-hx2lp",
    *,
    at: datetime | None = None,
    status: str = "firing",
    **labels: Any,
) -> Object:
    """One alert of a notification about ``namespace/pod`` (None leaves a label out), started
    ``at`` a time if given; ``labels`` change the defaults (None removes one). Its fingerprint
    is a hash of its labels, as Alertmanager's is."""
    base = {"alertname": "KubePodCryptoMiner", "rule": "crypto-miner-detected",
            "severity": "warning", "namespace": namespace, "pod": pod}  # fmt: skip
    merged = drop_none({**base, **labels})
    started = (at or datetime(2025, 3, 14, 9, 12, 44)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    identity = ",".join(f"{key}={value}" for key, value in sorted(merged.items()))
    return {
        "status": status, "labels": merged,
        "annotations": {"summary": f"Crypto miner in {namespace}/{pod}"},
        "startsAt": started, "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=up&g0.tab=1",
        "fingerprint": hashlib.sha256(identity.encode()).hexdigest()[:16],
    }  # fmt: skip


def alertmanager_notification(*alerts: Mapping[str, Any]) -> Object:
    """A version 4 webhook notification carrying ``alerts``."""
    firing = any(alert.get("status") == "firing" for alert in alerts)
    return {
        "receiver": "amtd", "status": "firing" if firing else "resolved", "alerts": list(alerts),
        "groupLabels": {"alertname": "KubePodCryptoMiner"}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager-main-0:9093",
        "version": "4", "groupKey": '{}:{alertname="KubePodCryptoMiner"}', "truncatedAlerts": 0,
    }  # fmt: skip


def change_copy(document: Mapping[str, Any], changes: Mapping[str, Any]) -> Object:
    """A deep copy of ``document`` with top-level ``changes`` (None removes a key)."""
    changed = copy.deepcopy(dict(document))
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed


def drop_none(mapping: Mapping[str, Any]) -> Object:
    """The items whose value is not None."""
    return {key: value for key, value in mapping.items() if value is not None}


def build_deployment(
    name: str, replicas: int = 2, container: Object | None = None, *,
    labels: Mapping[str, str] | None = None, pod_labels: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None, namespace: str | None = None,
) -> Object:  # fmt: skip
    """An apps/v1 Deployment selecting ``app=<name>``, with one container (default nginx:1.27);
    ``labels`` and ``pod_labels`` add to ``app=<name>`` on the Deployment and its pods."""
    selector = {"app": name}
    metadata: Object = {"name": name, "labels": {**selector, **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    template_meta: Object = {"labels": {**selector, **(pod_labels or {})}}
    if pod_annotations:
        template_meta["annotations"] = dict(pod_annotations)
    pod_spec = {"containers": [container or {"name": "nginx", "image": "nginx:1.27"}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }
