"""What the ingest and timer tests send besides alerts: the token, switches, Falco CE headers.

The alerts themselves come from ``support.builders``.
"""

from __future__ import annotations

from typing import Any

import pytest

from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.kube.events import CLUSTER_SCOPED_EVENTS_NAMESPACE

TOKEN = "s3cret-ingest-token"
# Optional switches of the ingest functions, unset so each test sees the deployed defaults.
INGEST_SWITCHES = ("AMTD_INGEST_AUTH", "RULE_SOURCE", "KUBEARMOR_EXTRA_TYPES")

# The attributes of the amtd-timer PingSource's events, as the Broker delivers them to timer.
PING = {
    "type": "dev.knative.sources.ping",
    "source": "/apis/v1/namespaces/amtd-system/pingsources/amtd-timer",
    "id": "ping-1",
    "datacontenttype": "application/json",
}

# Falcosidekick's binary-mode CloudEvent headers, values percent-encoded.
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


def repeated_events(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    """The ``Repeated`` Events about SecurityEvent ``name`` (where ingest counts repeats)."""
    return [
        event
        for event in cluster.list(EVENTS, CLUSTER_SCOPED_EVENTS_NAMESPACE)
        if event["reason"] == "Repeated" and event["involvedObject"]["name"] == name
    ]


def count_repeats(cluster: Cluster, name: str) -> int:
    """How many repeats of its alert the Repeated Events of SecurityEvent ``name`` count."""
    return sum(event["count"] for event in repeated_events(cluster, name))
