"""Helpers for the ingest and timer tests: alert fixtures, the ingest settings, requests.

Alert fixtures are the tools' real formats (REFERENCE §4.1, §4.2, §4.4).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from amtd.kube.api import SECURITY_EVENTS, Cluster

TOKEN = "s3cret-ingest-token"
# Optional switches of the ingest functions, unset so each test sees the deployed defaults.
INGEST_SWITCHES = ("AMTD_INGEST_AUTH", "RULE_SOURCE", "KUBEARMOR_EXTRA_TYPES")

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
    return change_copy(FALCO_ALERT, changes)


def kubearmor_alert(**changes: Any) -> dict[str, Any]:
    """A copy of the §4.4 alert with changes (None removes a key)."""
    return change_copy(KUBEARMOR_ALERT, changes)


def change_copy(alert: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``alert`` with top-level ``changes`` (None removes a key)."""
    changed = copy.deepcopy(dict(alert))
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed


def expect_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest functions expect TOKEN, with every optional switch at its default."""
    monkeypatch.setenv("INGEST_TOKEN", TOKEN)
    for name in INGEST_SWITCHES:
        monkeypatch.delenv(name, raising=False)


def bearer(token: str = TOKEN) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def security_events(cluster: Cluster) -> list[dict[str, Any]]:
    """Every SecurityEvent, by name."""
    return sorted(cluster.list(SECURITY_EVENTS), key=lambda item: item["metadata"]["name"])
