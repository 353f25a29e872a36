"""Deciding: turn a matching choice into the recorded decision for one target. Pure.

Step ids are deterministic (SecurityEvent uid, generation, target), so a redelivered event or a
restarted matcher produces the same ids and executors can tell a repeat from new work.
"""

from __future__ import annotations

from amtd.matching import Choice
from amtd.securityevents import Decision, Execution
from amtd.targets import Target

MATCHER = "matcher"


def make_step_id(uid: str, generation: int, target: Target) -> str:
    """``<uid>/<generation>/<namespace>/<pod>``."""
    return f"{uid}/{generation}/{target.namespace}/{target.name}"


def decide_matched(
    choice: Choice, target: Target, pod_uid: str, step_id: str, now: str
) -> Decision:
    """The decision for a pod that exists: the winner's action, or Unmatched with the reason."""
    winner = choice.winner
    if winner is None:
        reason = "NoRuleMatched" if choice.is_covered else "NoPolicyCovers"
        return Decision(
            target=str(target),
            outcome="Unmatched",
            step_id=step_id,
            pod_uid=pod_uid,
            reason=reason,
            decided_at=now,
        )
    spec = winner.policy.spec
    return Decision(
        target=str(target),
        outcome="Matched",
        step_id=step_id,
        pod_uid=pod_uid,
        policy=winner.policy.ref,
        rule_index=winner.index,
        rule=dict(winner.rule),
        score=winner.score,
        action=winner.action.kind,
        parameters=winner.action.parameters,
        dry_run=spec.dry_run,
        allow_standalone_pods=spec.allow_standalone_pods,
        ties=[tie.ref for tie in choice.ties],
        reason="FallbackRule" if winner.is_fallback else "BestMatch",
        decided_at=now,
    )


def decide_missing_pod(target: Target, step_id: str, now: str) -> Decision:
    """The decision for a target whose pod does not exist (already gone, or never was)."""
    return Decision(
        target=str(target),
        outcome="PodNotFound",
        step_id=step_id,
        reason="PodNotFound",
        decided_at=now,
    )


def record_without_executor(decision: Decision, now: str) -> Execution | None:
    """Actions that need no executor are recorded at once: never silently dropped (D3)."""
    if decision.outcome != "Matched" or decision.action in ("delete", "quarantine"):
        return None
    unsupported = decision.action in ("debugger", "customAction")
    return Execution(
        step_id=decision.step_id,
        target=decision.target,
        action=decision.action or "",
        result="Skipped",
        reason="ActionUnsupported" if unsupported else "ActionDisabled",
        message=(
            f"{decision.action} is accepted but not executed by this version"
            if unsupported
            else "the matching rule's action is disable: nothing to do"
        ),
        executor=MATCHER,
        time=now,
        pod_uid=decision.pod_uid,
    )


def is_executable_decision(decision: Decision) -> bool:
    """Whether an executor has to act on this decision."""
    return decision.outcome == "Matched" and decision.action in ("delete", "quarantine")
