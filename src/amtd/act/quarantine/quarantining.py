"""Quarantining: names, labels and NetworkPolicy manifests that isolate one pod. Pure.

A quarantined pod keeps running for forensics while a per-pod NetworkPolicy denies all its
traffic (DNS included). Its labels move into one JSON annotation, so its ReplicaSet and Services
drop it and the workload starts a clean replacement; ``amtd release --restore`` puts them back.

Phoenix named the policy ``<ns>-<pod>-policy`` and used that as a label value, which breaks past 63
characters (the label value limit). Here the name is bounded: a readable stem of the pod name plus a
hash of namespace, name and uid, so it is unique per pod incarnation and valid for any name length.
The policy is owned by the pod (not as controller): it goes away with the pod, and nothing is ever
owned by an AMTD (Phoenix's was, so deleting a policy deleted the evidence).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd.model.objects import Object

PREFIX = "amtd.r6security.com"
QUARANTINE_LABEL = f"{PREFIX}/quarantine"
QUARANTINED_LABELS = f"{PREFIX}/quarantined-labels"
QUARANTINED_BY = f"{PREFIX}/quarantined-by"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "amtd"
MAX_NAME_LENGTH = 63
NAME_HEAD = "amtd-q-"
HASH_LENGTH = 10
UNSAFE_CHARACTERS = re.compile(r"[^a-z0-9-]+")
# The operator's word that the CNI enforces NetworkPolicy (nothing in the API shows it).
ENFORCED_VARIABLE = "NETWORKPOLICY_ENFORCED"
UNENFORCED_CAVEAT = (
    "isolation not confirmed: the cluster's CNI is not declared to enforce NetworkPolicy "
    f"(set {ENFORCED_VARIABLE}=true on executor-quarantine once it is checked, docs/DEPLOY.md)"
)


@dataclass(frozen=True)
class QuarantineRecord:
    """What the quarantine wrote on a pod, read back (for release)."""

    policy_name: str
    security_event: str
    step_id: str
    labels: dict[str, str]


def make_quarantine_name(namespace: str, pod_name: str, pod_uid: str) -> str:
    """The NetworkPolicy name and quarantine label value: DNS-1123 label, ≤ 63 characters."""
    digest = hashlib.sha256(f"{namespace}/{pod_name}/{pod_uid}".encode()).hexdigest()
    room = MAX_NAME_LENGTH - len(NAME_HEAD) - 1 - HASH_LENGTH
    stem = UNSAFE_CHARACTERS.sub("-", pod_name.lower())[:room].strip("-")
    return f"{NAME_HEAD}{stem}-{digest[:HASH_LENGTH]}" if stem else f"{NAME_HEAD}{digest[:16]}"


def is_isolation_enforced(env: Mapping[str, str]) -> bool:
    """Whether the operator declared NetworkPolicy enforced (``NETWORKPOLICY_ENFORCED=true``)."""
    return env.get(ENFORCED_VARIABLE, "").strip().lower() == "true"


def make_quarantined_by(security_event: str, step_id: str) -> str:
    """``<securityevent name>/<stepId>``: how release finds the SecurityEvent to record on."""
    return f"{security_event}/{step_id}"


def build_network_policy(pod: Mapping[str, Any], name: str, quarantined_by: str) -> Object:
    """A deny-all (ingress and egress, DNS included) NetworkPolicy owned by the pod."""
    meta = pod["metadata"]
    owner = {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {MANAGED_BY_LABEL: MANAGER, QUARANTINE_LABEL: name},
            "annotations": {QUARANTINED_BY: quarantined_by},
            "ownerReferences": [owner],
        },
        # No ingress/egress rules with both policy types: nothing in, nothing out.
        "spec": {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: name}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def is_quarantined(pod: Mapping[str, Any], name: str) -> bool:
    """Whether the pod carries the quarantine label with our value (any other is not ours)."""
    return (pod["metadata"].get("labels") or {}).get(QUARANTINE_LABEL) == name


def build_quarantine_patch(pod: Mapping[str, Any], name: str, quarantined_by: str) -> Object | None:
    """Merge patch moving every label into one annotation; None when already quarantined.

    A quarantine label with another value (a template's, anyone's) is overwritten and not kept
    for release. Labels an earlier attempt of this step saved stay saved. Only our own
    annotation keys are added (Phoenix overwrote same-named ones). The resourceVersion makes
    the patch fail (409) if the pod changed since it was read.
    """
    meta = pod["metadata"]
    if is_quarantined(pod, name):
        return None
    labels: dict[str, str] = dict(meta.get("labels") or {})
    moved: dict[str, str | None] = dict.fromkeys(labels)
    labels.pop(QUARANTINE_LABEL, None)
    saved = {**read_saved_labels(pod, quarantined_by), **labels}
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "labels": {**moved, QUARANTINE_LABEL: name},
            "annotations": {
                QUARANTINED_LABELS: json.dumps(saved, sort_keys=True, separators=(",", ":")),
                QUARANTINED_BY: quarantined_by,
            },
        }
    }


def read_saved_labels(pod: Mapping[str, Any], quarantined_by: str) -> dict[str, str]:
    """The labels an earlier attempt of the same step saved (a retry after a label was changed)."""
    annotations = pod["metadata"].get("annotations") or {}
    if annotations.get(QUARANTINED_BY) != quarantined_by:
        return {}
    try:
        saved = json.loads(annotations.get(QUARANTINED_LABELS, "{}"))
    except ValueError:
        return {}
    if not isinstance(saved, dict):
        return {}
    return {key: value for key, value in saved.items() if isinstance(value, str)}


def check_policy(policy: Mapping[str, Any] | None, name: str) -> str:
    """What keeps ``policy`` from being our deny-all policy selecting our label; "" if nothing."""
    if policy is None:
        return f"NetworkPolicy {name} is gone"
    spec = policy.get("spec") or {}
    if spec.get("podSelector") != {"matchLabels": {QUARANTINE_LABEL: name}}:
        return f"NetworkPolicy {name} selects {spec.get('podSelector')}, not {QUARANTINE_LABEL}"
    types = sorted(spec.get("policyTypes") or [])
    if types != ["Egress", "Ingress"] or spec.get("ingress") or spec.get("egress"):
        return f"NetworkPolicy {name} does not deny all traffic"
    return ""


def check_isolation(policy: Mapping[str, Any] | None, pod: Mapping[str, Any], name: str) -> str:
    """What keeps ``policy`` from isolating ``pod`` (both as read back); "" if nothing.

    Success is recorded only when the deny-all policy selects exactly our label and the pod
    carries it now: anyone who edits either in between makes the step fail instead.
    """
    label = (pod["metadata"].get("labels") or {}).get(QUARANTINE_LABEL)
    if label != name:
        return f"the pod's label {QUARANTINE_LABEL} is {label!r}, not {name!r}"
    return check_policy(policy, name)


def read_quarantine(pod: Mapping[str, Any]) -> QuarantineRecord | None:
    """What the quarantine wrote on the pod, or None when it is not quarantined.

    Raises ValueError when the label is not amtd's value for this pod, or the annotations are
    there but unreadable (edited by hand).
    """
    meta = pod["metadata"]
    name = (meta.get("labels") or {}).get(QUARANTINE_LABEL)
    if name is None:
        return None
    if name != make_quarantine_name(meta["namespace"], meta["name"], meta["uid"]):
        # not amtd's value: the policy it would name may be anyone's
        raise ValueError(f"label {QUARANTINE_LABEL}={name} was not set by amtd for this pod")
    annotations = meta.get("annotations") or {}
    security_event, _, step_id = annotations.get(QUARANTINED_BY, "").partition("/")
    try:
        labels = json.loads(annotations.get(QUARANTINED_LABELS, "{}"))
    except ValueError:
        raise ValueError(f"annotation {QUARANTINED_LABELS} is not JSON") from None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValueError(f"annotation {QUARANTINED_LABELS} is not a map of strings")
    return QuarantineRecord(name, security_event, step_id, labels)


def build_restore_patch(
    pod: Mapping[str, Any], record: QuarantineRecord, cleared_annotations: tuple[str, ...]
) -> Object:
    """Merge patch putting the original labels back and removing the quarantine marks."""
    meta = pod["metadata"]
    cleared = dict.fromkeys((QUARANTINED_LABELS, QUARANTINED_BY, *cleared_annotations))
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "labels": {**record.labels, QUARANTINE_LABEL: None},
            "annotations": cleared,
        }
    }


def describe_quarantine(pod: Mapping[str, Any], name: str) -> str:
    """One line saying what quarantining this pod does (also the dry-run message)."""
    meta = pod["metadata"]
    moved = ", ".join(sorted(meta.get("labels") or {})) or "none"
    return (
        f"isolate pod {meta['namespace']}/{meta['name']} with deny-all NetworkPolicy {name}; "
        f"labels moved to annotation {QUARANTINED_LABELS}: {moved}"
    )
