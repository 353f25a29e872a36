"""Helpers for the API server stand-in tests: polling, manifests, the project's CRDs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

from support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "knative" / "crds"
DEADLINE_S = 15.0

# Used when the project's CRDs are not there (they are the lead's files).
FALLBACK_SECURITYEVENT_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "securityevents.amtd.r6security.com"},
    "spec": {
        "group": "amtd.r6security.com",
        "scope": "Cluster",
        "names": {"kind": "SecurityEvent", "plural": "securityevents", "shortNames": ["sev"]},
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Target", "type": "string", "jsonPath": ".spec.targets[*]"},
                    {"name": "Type", "type": "string", "jsonPath": ".spec.rule.type"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["targets", "rule"],
                                "properties": {
                                    "targets": {"type": "array", "items": {"type": "string"}},
                                    "rule": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "description": {"type": "string"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def project_crds() -> list[dict[str, Any]]:
    """The project's CRDs from knative/crds, or a small stand-in SecurityEvent CRD."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    return docs or [FALLBACK_SECURITYEVENT_CRD]


def poll(predicate: Callable[[], Any], timeout_s: float = DEADLINE_S) -> Any:
    """Call `predicate` until it returns something truthy; fail after the deadline."""
    return wait_for(predicate, f"{predicate}", timeout_s, interval_s=0.02)


def pod_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A minimal pod."""
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }


def raw(
    server_url: str,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    user: str = "test",
) -> requests.Response:
    """One raw HTTP request (for what the typed client cannot express); bytes are sent as is."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    sent = {"Authorization": f"Bearer {user}", "Content-Type": content_type, **(headers or {})}
    return requests.request(method, server_url + path, data=data, headers=sent, timeout=30)
