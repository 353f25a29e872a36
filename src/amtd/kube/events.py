"""Kube events: core/v1 Event manifests, so ``kubectl describe`` shows what happened. Pure.

Names are derived from a key (a hash), so writing the same Event twice answers 409 instead of
making a duplicate: redeliveries leave one Event. SecurityEvents are cluster-scoped; Kubernetes
keeps the Events of cluster-scoped objects in namespace ``default`` with an involvedObject that
has no namespace, which is where ``kubectl describe securityevent X`` looks for them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from amtd import API_VERSION
from amtd import SECURITY_EVENT_KIND as KIND

CLUSTER_SCOPED_EVENTS_NAMESPACE = "default"
MAX_MESSAGE_LENGTH = 1024
NAME_PREFIX_LENGTH = 200

KubeEventType = Literal["Normal", "Warning"]


def refer_to_security_event(name: str, uid: str | None) -> dict[str, str]:
    """involvedObject for a SecurityEvent (cluster-scoped: no namespace; uid when known)."""
    involved = {"apiVersion": API_VERSION, "kind": KIND, "name": name}
    return {**involved, "uid": uid} if uid else involved


def refer_to_pod(namespace: str, name: str, uid: str | None) -> dict[str, str]:
    """involvedObject for a pod (uid when known)."""
    involved = {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": name}
    return {**involved, "uid": uid} if uid else involved


def make_kube_event_name(involved_name: str, key: str) -> str:
    """``<involved name>.<16 hex of sha256(key)>``, a valid name for any involved name."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    prefix = involved_name[:NAME_PREFIX_LENGTH].rstrip("-.")
    return f"{prefix}.{digest}" if prefix else digest


def shorten_message(message: str) -> str:
    """One line, at most MAX_MESSAGE_LENGTH characters."""
    line = " ".join(message.split())
    if len(line) <= MAX_MESSAGE_LENGTH:
        return line
    return line[: MAX_MESSAGE_LENGTH - 3] + "..."


def make_kube_event(
    involved: Mapping[str, str], *, namespace: str, reason: str, message: str, key: str,
    component: str, now: str, event_type: KubeEventType = "Normal", action: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A core/v1 Event about ``involved``, named from ``key`` (the same key, the same Event)."""
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": make_kube_event_name(involved.get("name", ""), key),
            "namespace": namespace,
        },
        "involvedObject": dict(involved),
        "reason": reason,
        "message": shorten_message(message),
        "type": event_type,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    return {**event, "action": action} if action else event
