"""Claiming: one step at a time may act on a pod, and only a real step's claim counts. Pure.

Delivery is at-least-once and two SecurityEvents may ask for different actions on one pod at
once (delete + quarantine). Before acting, an executor merge-patches its claim onto the pod
together with the resourceVersion it read: the API server answers 409 if anyone wrote the pod in
between, so exactly one claimant wins. A retry of the same step finds its own claim and carries
on; any other step finds a standing claim and is skipped. An action whose effect ends the pod
(delete, evict) claims nothing: its call carries the resourceVersion it read as a precondition,
which excludes a racing claimant just as well, and there is no pod left for a claim to guard.

The claim (annotation ``claimed-by``) is JSON naming the SecurityEvent, the step and the pod's
uid. Anyone who can write a pod template or a pod can write that annotation too, so a claim
*stands* only when

- it names this pod's uid: the API server assigns the uid when it creates the pod, so a value
  copied from a pod template (or set at creation) can never carry it; and
- it is this step's own (a retry), or the SecurityEvent it names records that step as decided
  for this very pod (target and uid) and not ended without success. Only amtd writes
  SecurityEvents' status, so no annotation can point to such a step unless the step is real.

Anything else (a template's value, a guess, a plain step id, garbage) is not a claim: the
executor overwrites it with its own, conflict-checked like any claim. A standing claim outlives
its step's success (a quarantined pod is never deleted) for as long as its SecurityEvent exists.

``amtd release --restore`` replaces the claim with a release mark (annotation ``released``: the
pod's uid and the released quarantine steps), so a quarantine step replayed after its record was
erased from the status (anyone who may write the status could) does not isolate the pod again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd import GROUP
from amtd.model.securityevents import SecurityEventStatus
from amtd.model.targets import DNS1123_SUBDOMAIN

CLAIMED_BY = f"{GROUP}/claimed-by"
RELEASED = f"{GROUP}/released"
MAX_NAME_LENGTH = 253  # of a SecurityEvent (a DNS-1123 subdomain)
MAX_RELEASED = 20  # step ids kept in a release mark: a bound on what one pod carries


@dataclass(frozen=True)
class Claim:
    """Which step (of which SecurityEvent) claimed which pod incarnation."""

    security_event: str
    step_id: str
    pod_uid: str


def encode_claim(claim: Claim) -> str:
    """The annotation value of a claim: compact JSON, keys sorted."""
    value = {"podUid": claim.pod_uid, "securityEvent": claim.security_event,
             "stepId": claim.step_id}  # fmt: skip
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def read_claim(pod: Mapping[str, Any]) -> Claim | None:
    """The claim written on the pod, if it has the claim's shape (None for anything else)."""
    annotations: Mapping[str, str] = pod["metadata"].get("annotations") or {}
    try:
        value = json.loads(annotations.get(CLAIMED_BY) or "null")
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    fields = [value.get(key) for key in ("securityEvent", "stepId", "podUid")]
    texts = [item for item in fields if isinstance(item, str) and item]
    if len(texts) != len(fields):
        return None
    claim = Claim(*texts)
    name = claim.security_event
    return claim if len(name) <= MAX_NAME_LENGTH and DNS1123_SUBDOMAIN.match(name) else None


def is_bound_to(claim: Claim | None, pod: Mapping[str, Any]) -> bool:
    """Whether the claim names this very pod incarnation (its uid)."""
    uid = pod["metadata"].get("uid")
    return claim is not None and bool(uid) and claim.pod_uid == uid


def is_own_claim(claim: Claim | None, pod: Mapping[str, Any], step_id: str) -> bool:
    """Whether the step itself claimed this pod (a retry)."""
    return is_bound_to(claim, pod) and claim is not None and claim.step_id == step_id


def is_claim_standing(
    claim: Claim, pod: Mapping[str, Any], security_event: Mapping[str, Any] | None
) -> bool:
    """Whether ``security_event`` (the one the claim names, as read) backs the claim."""
    if security_event is None or not is_bound_to(claim, pod):
        return False
    try:
        status = SecurityEventStatus.model_validate(security_event.get("status") or {})
    except ValueError:
        return False
    meta = pod["metadata"]
    target = f"{meta.get('namespace')}/{meta.get('name')}"
    decided = any(
        item.step_id == claim.step_id and item.target == target
        and item.pod_uid == claim.pod_uid and item.action
        for item in status.decisions
    )  # fmt: skip
    ended = [item for item in status.executions if item.step_id == claim.step_id]
    return decided and all(item.result == "Succeeded" for item in ended)


def build_claim_patch(
    pod: Mapping[str, Any], step_id: str, security_event: str
) -> dict[str, Any] | None:
    """Merge patch claiming the pod for a step (conditional on its resourceVersion).

    None when this step already holds the claim (a retry): nothing to write. Any other value is
    overwritten: the caller has found that it does not stand.
    """
    if is_own_claim(read_claim(pod), pod, step_id):
        return None
    meta = pod["metadata"]
    claim = Claim(security_event, step_id, meta["uid"])
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {CLAIMED_BY: encode_claim(claim)},
        }
    }


def read_released(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """The steps whose quarantine of this very pod (its uid) was released; () for anything else."""
    annotations: Mapping[str, str] = pod["metadata"].get("annotations") or {}
    try:
        value = json.loads(annotations.get(RELEASED) or "null")
    except ValueError:
        return ()
    uid = pod["metadata"].get("uid")
    if not isinstance(value, dict) or not uid or value.get("podUid") != uid:
        return ()  # a value copied from a template cannot name the uid
    steps = value.get("stepIds")
    return tuple(item for item in steps if isinstance(item, str)) if isinstance(steps, list) else ()


def encode_released(pod: Mapping[str, Any], step_id: str) -> str:
    """The release mark of the pod once ``step_id``'s quarantine is released (JSON)."""
    kept = [item for item in read_released(pod) if item != step_id]
    steps = [*kept, step_id][-MAX_RELEASED:]
    value = {"podUid": pod["metadata"]["uid"], "stepIds": steps}
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
