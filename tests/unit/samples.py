"""Builders and sample documents shared by the unit tests (Phoenix fixtures, §1.3 objects)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from amtd.model.policies import Policy

ROOT = Path(__file__).resolve().parents[2]
# Phoenix's config/samples objects (its stray invalid line removed, namespace demo added).
PHOENIX = Path(__file__).resolve().parent / "phoenix"
PHOENIX_AMTD = PHOENIX / "amtd-sample.yaml"
PHOENIX_DEPLOYMENT = PHOENIX / "test-deployment.yaml"
CRDS = ROOT / "knative" / "crds"

# The SecurityEvent Phoenix's falco-integrator writes for a Falco terminal-shell alert.
PHOENIX_SECURITY_EVENT: dict[str, Any] = {
    "apiVersion": "amtd.r6security.com/v1beta1",
    "kind": "SecurityEvent",
    "metadata": {"name": "falco-cart-6b8f7d9c4-hx2lp-1741943564"},
    "spec": {
        "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
        "rule": {
            "type": "Terminal shell in container",
            "threatLevel": "Notice",
            "source": "FalcoIntegrator",
        },
        "description": "09:12:44.318220471: Notice A shell was spawned in a container with an "
        "attached terminal (...)",
    },
}


def load_phoenix_amtd() -> dict[str, Any]:
    """The upstream sample AMTD, as a document."""
    document: dict[str, Any] = yaml.safe_load(PHOENIX_AMTD.read_text())
    return document


def load_crd(plural: str) -> dict[str, Any]:
    """One of our CRDs, as a document."""
    document: dict[str, Any] = yaml.safe_load((CRDS / f"{plural}.yaml").read_text())
    return document


def policy_document(
    name: str,
    namespace: str,
    selector: Mapping[str, str],
    strategy: Sequence[tuple[Mapping[str, str], Any]],
) -> dict[str, Any]:
    """An AMTD document; each strategy item is (rule, action) with the action as YAML has it."""
    return {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "AdaptiveMovingTargetDefense",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": dict(selector),
            "strategy": [
                {"rule": dict(rule), "action": copy.deepcopy(action)} for rule, action in strategy
            ],
        },
    }


def make_policy(
    name: str,
    namespace: str = "demo",
    selector: Mapping[str, str] | None = None,
    rules: Sequence[Mapping[str, str]] = ({"type": "default"},),
    action: str = "quarantine",
) -> Policy:
    """A validated AMTD whose every rule has the same action (tests tell entries apart by index)."""
    strategy = [(rule, {action: {}}) for rule in rules]
    return Policy.model_validate(policy_document(name, namespace, selector or {}, strategy))


def with_spec(document: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of the document with spec keys replaced (None removes the key)."""
    changed = copy.deepcopy(dict(document))
    for key, value in changes.items():
        if value is None:
            changed["spec"].pop(key, None)
        else:
            changed["spec"][key] = value
    return changed
