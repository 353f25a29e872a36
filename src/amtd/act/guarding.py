"""Guarding: whether an executor may act on a pod, decided before any change. Pure.

Every guard that stops a step yields a :class:`Verdict` that is recorded as the step's Execution
(result Skipped, DryRun, or Succeeded when the goal is already met), never a silent drop:

- protected namespace (``PROTECTED_NAMESPACES``, default the system namespaces and our own);
- the pod is gone or terminating (delete: already done; quarantine: nothing left to isolate);
- the pod is not the one decided on (a namesake replaced it: StatefulSet names are reused);
- another step already claimed the pod (a quarantined pod is never deleted: evidence is kept);
- a standalone pod (no controller owner would replace it) unless the policy allows it;
- dry run: the message says what would have been done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd.act.claiming import is_claimed_by_other, read_claim
from amtd.model.actionevents import ActionStep
from amtd.model.securityevents import Result

SYSTEM_NAMESPACES = (
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "knative-serving",
    "knative-eventing",
)
DEFAULT_AMTD_NAMESPACE = "amtd-system"


@dataclass(frozen=True)
class Verdict:
    """The outcome a guard settles a step with."""

    result: Result
    reason: str
    message: str


def read_protected_namespaces(env: Mapping[str, str]) -> frozenset[str]:
    """``PROTECTED_NAMESPACES`` (comma list) or the system namespaces, always plus our own."""
    configured = [item.strip() for item in env.get("PROTECTED_NAMESPACES", "").split(",")]
    chosen = [item for item in configured if item] or list(SYSTEM_NAMESPACES)
    return frozenset([*chosen, env.get("AMTD_NAMESPACE") or DEFAULT_AMTD_NAMESPACE])


def check_namespace(namespace: str, protected: frozenset[str]) -> Verdict | None:
    """Skip targets in protected namespaces (checked before the pod is even read)."""
    if namespace not in protected:
        return None
    return Verdict("Skipped", "ProtectedNamespace", f"namespace {namespace} is protected")


def is_standalone(pod: Mapping[str, Any]) -> bool:
    """A pod with no controller owner: nothing would replace it."""
    owners = pod["metadata"].get("ownerReferences") or []
    return not any(owner.get("controller") for owner in owners)


def judge_missing_pod(action: str, target: str) -> Verdict:
    """The pod is gone or terminating: delete's goal is met, quarantine has no subject."""
    if action == "delete":
        return Verdict("Succeeded", "PodAlreadyGone", f"pod {target} is already gone")
    return Verdict("Skipped", "PodNotFound", f"pod {target} no longer exists: nothing to isolate")


def check_pod(step: ActionStep, pod: Mapping[str, Any]) -> Verdict | None:
    """The pod guards, in order; None when the step may go ahead."""
    if pod["metadata"].get("deletionTimestamp"):
        return judge_missing_pod(step.action, step.target)
    uid = pod["metadata"].get("uid")
    if step.pod_uid and uid != step.pod_uid:
        return Verdict(
            "Skipped", "PodReplaced", f"pod {step.target} is now uid {uid}, not {step.pod_uid}"
        )
    if read_claim(pod) == step.step_id:
        return None  # claimed by this step (a retry): the guards passed when it was claimed
    if is_claimed_by_other(pod, step.step_id):
        return Verdict(
            "Skipped", "AlreadyClaimed", f"pod {step.target} is claimed by {read_claim(pod)}"
        )
    if is_standalone(pod) and not step.allow_standalone_pods:
        return Verdict(
            "Skipped",
            "StandalonePod",
            f"pod {step.target} has no controller to replace it (allowStandalonePods is false)",
        )
    return None


def check_dry_run(step: ActionStep, description: str) -> Verdict | None:
    """In dry-run mode nothing changes; the message says what would have been done."""
    if not step.dry_run:
        return None
    return Verdict("DryRun", "DryRun", f"dry run: would {description}")
