"""Guarding: whether an executor may act on a pod, decided before any change. Pure.

Every guard that stops a step yields a :class:`~amtd.act.verdicts.StepVerdict` that is recorded
as the step's Execution (result Skipped, DryRun, or Succeeded when the goal is already met),
never a silent drop:

- protected namespace (the system namespaces, our own and ``PROTECTED_NAMESPACES``);
- the pod is gone or terminating (each action judges that: delete is done, quarantine is not);
- the pod is not the one decided on (a namesake replaced it: StatefulSet names are reused);
- ``amtd release`` released this step's quarantine of the pod (a replay after its record was
  erased from the status must not isolate it again);
- another real step already claimed the pod (a quarantined pod is never deleted: evidence is
  kept); a claim annotation no real step wrote is no claim (:mod:`amtd.act.claiming`);
- the pod carries amtd's quarantine label value for it (a hash of namespace, name and uid, which
  no template can know), even once the quarantine's claim no longer stands: only the quarantine
  action itself acts on it, until ``amtd release`` removes the label;
- a standalone pod (no controller owner would replace it) unless the policy allows it;
- dry run: the message says what would have been done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amtd.act.actions import ExecutableAction
from amtd.act.claiming import Claim, is_own_claim, read_claim, read_released
from amtd.act.quarantine.quarantining import QUARANTINE_LABEL, make_quarantine_name
from amtd.act.verdicts import StepVerdict
from amtd.model.actionevents import ActionStep

SYSTEM_NAMESPACES = (
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "knative-serving",
    "knative-eventing",
)
DEFAULT_AMTD_NAMESPACE = "amtd-system"


def read_protected_namespaces(env: Mapping[str, str]) -> frozenset[str]:
    """The system namespaces plus ``PROTECTED_NAMESPACES`` (comma list), always plus our own.

    ``AMTD_PROTECTED_NAMESPACES_REPLACE=true`` makes the list replace the system namespaces: a
    typo'd or partial list must not quietly unprotect kube-system, so replacing is opt-in.
    """
    configured = [item.strip() for item in env.get("PROTECTED_NAMESPACES", "").split(",")]
    listed = [item for item in configured if item]
    replacing = env.get("AMTD_PROTECTED_NAMESPACES_REPLACE", "").strip().lower() == "true"
    base = [] if replacing else list(SYSTEM_NAMESPACES)
    return frozenset([*base, *listed, env.get("AMTD_NAMESPACE") or DEFAULT_AMTD_NAMESPACE])


def check_protected_namespace(namespace: str, protected: frozenset[str]) -> StepVerdict | None:
    """Skip targets in protected namespaces (checked before the pod is even read)."""
    if namespace not in protected:
        return None
    return StepVerdict("Skipped", "ProtectedNamespace", f"namespace {namespace} is protected")


def is_standalone(pod: Mapping[str, Any]) -> bool:
    """A pod with no controller owner: nothing would replace it."""
    owners = pod["metadata"].get("ownerReferences") or []
    return not any(owner.get("controller") for owner in owners)


def check_pod(
    step: ActionStep, pod: Mapping[str, Any], action: ExecutableAction,
    standing: Claim | None = None,
) -> StepVerdict | None:  # fmt: skip
    """The pod guards, in order; None when the step may go ahead.

    ``standing`` is the pod's claim when the caller found it standing (a real step's, see
    :mod:`amtd.act.claiming`); any other claim annotation is no reason to stop.
    """
    if pod["metadata"].get("deletionTimestamp"):
        return action.judge_gone(step.target)
    uid = pod["metadata"].get("uid")
    if step.pod_uid and uid != step.pod_uid:
        return StepVerdict(
            "Skipped", "PodReplaced", f"pod {step.target} is now uid {uid}, not {step.pod_uid}"
        )
    if step.step_id in read_released(pod):
        message = f"pod {step.target} was released from this step's quarantine (amtd release)"
        return StepVerdict("Skipped", "AlreadyReleased", message)
    if is_own_claim(read_claim(pod), pod, step.step_id):
        return None  # claimed by this step (a retry): the guards passed when it was claimed
    if standing is not None and standing.step_id != step.step_id:
        return judge_claimed(step, standing)
    if is_quarantined_by_amtd(pod) and not action.acts_on_quarantined:
        return StepVerdict(
            "Skipped", "PodQuarantined", f"pod {step.target} is quarantined; release it first"
        )
    if is_standalone(pod) and not step.allow_standalone_pods:
        return StepVerdict(
            "Skipped",
            "StandalonePod",
            f"pod {step.target} has no controller to replace it (allowStandalonePods is false)",
        )
    return None


def is_quarantined_by_amtd(pod: Mapping[str, Any]) -> bool:
    """Whether the pod carries the quarantine label with amtd's own value for this incarnation."""
    meta = pod["metadata"]
    label = (meta.get("labels") or {}).get(QUARANTINE_LABEL)
    return label is not None and label == make_quarantine_name(
        meta["namespace"], meta["name"], meta.get("uid") or ""
    )


def judge_claimed(step: ActionStep, standing: Claim) -> StepVerdict:
    """Another real step holds the pod: this one does nothing."""
    message = (f"pod {step.target} is claimed by step {standing.step_id} "
               f"of SecurityEvent {standing.security_event}")  # fmt: skip
    return StepVerdict("Skipped", "AlreadyClaimed", message)


def check_dry_run(step: ActionStep, description: str) -> StepVerdict | None:
    """In dry-run mode nothing changes; the message says what would have been done."""
    if not step.dry_run:
        return None
    return StepVerdict("DryRun", "DryRun", f"dry run: would {description}")
