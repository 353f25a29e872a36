"""Deciding: turn matching choices into the recorded decisions of a SecurityEvent. Pure.

Step ids are deterministic (SecurityEvent uid, generation, target), so a redelivered event or a
restarted matcher produces the same ids and executors can tell a repeat from new work. Every
target is decided on its own: a malformed one gets an ``InvalidTarget`` decision and the others
are still decided (Phoenix aborted them all, docs/phoenix.md). The caller gathers the facts (pods,
policies) and passes them in; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from amtd.decide.matching import Candidate, Choice, PolicyIndex, choose_best_match
from amtd.model.actions import is_executable
from amtd.model.policies import clean_rule
from amtd.model.rules import Rule
from amtd.model.securityevents import Decision, Execution
from amtd.model.targets import Target, parse_target

MATCHER = "matcher"


class InvalidTarget(NamedTuple):
    """A ``spec.targets`` entry that is not ``namespace/name``, with the reason."""

    position: int
    text: str
    reason: str


@dataclass(frozen=True)
class PodFacts:
    """What the decision needs to know about a target's pod."""

    uid: str
    labels: Mapping[str, str]


TargetEntry = Target | InvalidTarget


def make_step_id(uid: str, generation: int, target: Target) -> str:
    """``<uid>/<generation>/<namespace>/<pod>``."""
    return f"{uid}/{generation}/{target.namespace}/{target.name}"


def decide_matched(
    choice: Choice, target: Target, pod_uid: str, step_id: str, now: str
) -> Decision:
    """The decision for a pod that exists: the winner's action, or Unmatched with the reason."""
    if choice.winner is None:
        return Decision(
            target=str(target),
            outcome="Unmatched",
            step_id=step_id,
            pod_uid=pod_uid,
            reason=choice.reason,
            decided_at=now,
        )
    return decide_winner(choice, choice.winner, target, pod_uid, step_id, now)


def decide_winner(
    choice: Choice, winner: Candidate, target: Target, pod_uid: str, step_id: str, now: str
) -> Decision:
    """The Matched decision: the winning entry's action, with its policy's options and ties."""
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
        reason=choice.reason,
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
    """Actions that need no executor are recorded at once, never silently dropped (Phoenix did)."""
    if decision.outcome != "Matched" or is_executable(decision.action or ""):
        return None
    return Execution(
        step_id=decision.step_id,
        target=decision.target,
        action=decision.action or "",
        result="Skipped",
        reason="ActionDisabled",
        message="the matching rule's action is disable: nothing to do",
        executor=MATCHER,
        time=now,
        pod_uid=decision.pod_uid,
    )


def read_targets(texts: Sequence[Any]) -> list[TargetEntry]:
    """Each ``spec.targets`` entry parsed on its own; duplicates dropped, order kept."""
    entries: dict[TargetEntry, None] = {}
    for position, text in enumerate(texts):
        try:
            entries.setdefault(parse_target(text))
        except ValueError as error:
            entries.setdefault(InvalidTarget(position, str(text), str(error)))
    return list(entries)


def read_event_spec(spec: Any) -> tuple[list[TargetEntry], dict[str, str]]:
    """A SecurityEvent spec's targets (each parsed on its own) and rule; ValueError if unusable."""
    if not isinstance(spec, dict):
        raise ValueError("spec is missing or not an object")
    targets = spec.get("targets")
    if not isinstance(targets, list) or not targets:
        raise ValueError("spec.targets must be a non-empty list of 'namespace/name'")
    try:
        rule = clean_rule(spec.get("rule"))
    except ValueError as error:
        raise ValueError(f"spec.rule: {error}") from None
    return read_targets(targets), rule


def decide_invalid_target(entry: InvalidTarget, step_id: str, now: str) -> Decision:
    """The decision for a target that cannot name a pod: nothing is done, the reason is kept."""
    return Decision(
        target=entry.text,
        outcome="InvalidTarget",
        step_id=step_id,
        reason=entry.reason,
        decided_at=now,
    )


def make_entry_step_id(uid: str, generation: int, entry: TargetEntry) -> str:
    """A valid target's step id, or ``<uid>/<generation>/invalid:<position>`` (no pod has it)."""
    if isinstance(entry, InvalidTarget):
        return f"{uid}/{generation}/invalid:{entry.position}"
    return make_step_id(uid, generation, entry)


def decide_target(
    entry: TargetEntry, pod: PodFacts | None, index: PolicyIndex, event_rule: Rule,
    step_id: str, now: str,
) -> Decision:  # fmt: skip
    """Decide one target from the facts gathered for it (``pod`` None: it does not exist)."""
    if isinstance(entry, InvalidTarget):
        return decide_invalid_target(entry, step_id, now)
    if pod is None:
        return decide_missing_pod(entry, step_id, now)
    choice = choose_best_match(index, entry.namespace, pod.labels, event_rule)
    return decide_matched(choice, entry, pod.uid, step_id, now)


def decide_targets(
    uid: str, generation: int, event_rule: Rule, entries: Sequence[TargetEntry],
    pods: Mapping[Target, PodFacts | None], index: PolicyIndex, now: str,
) -> list[Decision]:  # fmt: skip
    """Decide every target of one SecurityEvent generation, in ``spec.targets`` order."""
    return [
        decide_target(
            entry, pods.get(entry) if isinstance(entry, Target) else None, index, event_rule,
            make_entry_step_id(uid, generation, entry), now,
        )
        for entry in entries
    ]  # fmt: skip


def record_executions_without_executor(decisions: Sequence[Decision], now: str) -> list[Execution]:
    """The executions the matcher records itself (disable)."""
    executions = (record_without_executor(decision, now) for decision in decisions)
    return [execution for execution in executions if execution is not None]


def explain_decision(decision: Decision) -> str:
    """One line for logs and Kubernetes Events: target, outcome, and why."""
    if decision.outcome != "Matched":
        return f"{decision.target}: {decision.outcome} ({decision.reason})"
    dry_run = ", dry run" if decision.dry_run else ""
    return (
        f"{decision.target}: {decision.action} by {decision.policy}#{decision.rule_index} "
        f"(score {decision.score}, {decision.reason}{dry_run})"
    )
