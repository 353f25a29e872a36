"""Explaining: why an event on a pod gets the decision it gets, as data for ``amtd explain``. Pure.

The verdict comes from the real best match (:func:`amtd.decide.matching.choose_best_match`); around
it
the explanation adds what the matcher never needs: why each policy does or does not cover the
pod, and every rule of the covering policies with its score or the keys that did not match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from amtd.decide.matching import Choice, PolicyIndex, choose_best_match, is_policy_covering
from amtd.model.policies import Policy
from amtd.model.rules import DEFAULT_TYPE, Rule, format_rule, is_default_rule, score_rule
from amtd.model.targets import Target

TEMPLATE_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class KnownPod:
    """A pod read from a manifest, or a workload's pod template (standing for its pods)."""

    namespace: str
    name: str
    labels: dict[str, str]
    origin: str
    is_template: bool = False

    def is_naming(self, target: Target) -> bool:
        """Whether the target is this pod (or, for a template, one of its generated pods)."""
        if target.namespace != self.namespace:
            return False
        return (
            target.name.startswith(f"{self.name}-")
            if self.is_template
            else target.name == self.name
        )


@dataclass(frozen=True)
class PodView:
    """One target as matching sees it: its namespace and labels, and where those came from."""

    target: str
    namespace: str
    labels: dict[str, str]
    origin: str


@dataclass(frozen=True)
class Coverage:
    """Whether one policy covers the pod, and why."""

    policy: str
    is_covering: bool
    reason: str


@dataclass(frozen=True)
class RuleScore:
    """One strategy entry of a covering policy: its score, or why it does not match."""

    entry: str
    rule: dict[str, str]
    action: str
    score: int | None
    is_fallback: bool
    mismatches: tuple[str, ...]


@dataclass(frozen=True)
class MatchVerdict:
    """The decision, in the matcher's terms (outcome and reason as in a SecurityEvent status)."""

    outcome: Literal["Matched", "Unmatched"]
    reason: str
    winner: str | None
    action: str | None
    score: int | None
    ties: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class TargetExplanation:
    """Everything that led to the decision for one target."""

    pod: PodView
    coverage: tuple[Coverage, ...]
    rules: tuple[RuleScore, ...]
    verdict: MatchVerdict


@dataclass(frozen=True)
class Explanation:
    """The explanation of one event rule against every target."""

    event_rule: dict[str, str]
    targets: tuple[TargetExplanation, ...]


def read_pod_manifest(document: Mapping[str, Any], source: str) -> KnownPod:
    """A Pod, or a workload's pod template; raise ValueError naming the bad field."""
    kind = document.get("kind")
    metadata = document.get("metadata") or {}
    namespace = metadata.get("namespace") or DEFAULT_NAMESPACE
    name = str(metadata.get("name") or "")
    if kind == "Pod":
        labels = check_labels(metadata.get("labels") or {}, "metadata.labels")
        return KnownPod(namespace, name, labels, f"Pod {namespace}/{name} in {source}")
    if kind not in TEMPLATE_KINDS:
        raise ValueError(f"kind {kind!r} is neither a Pod nor a workload with a pod template")
    spec = document.get("spec") or {}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template_metadata = (spec.get("template") or {}).get("metadata") or {}
    labels = check_labels(template_metadata.get("labels") or {}, "spec.template.metadata.labels")
    origin = f"pod template of {kind} {namespace}/{name} in {source}"
    return KnownPod(namespace, name, labels, origin, is_template=True)


def check_labels(labels: Any, where: str) -> dict[str, str]:
    """Labels are a map of strings to strings; raise ValueError naming the bad one."""
    if not isinstance(labels, Mapping):
        raise ValueError(f"{where} must be a map, got {type(labels).__name__}")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"{where}: label {key!r} must map a string to a string, got {value!r}")
    return dict(labels)


def resolve_pods(
    targets: Sequence[Target], known: Sequence[KnownPod], labels: Mapping[str, str] | None
) -> list[PodView]:
    """The pod behind each target: a known pod naming it, else the given labels (if any)."""
    pods: list[PodView] = []
    for target in targets:
        found = next((pod for pod in known if pod.is_naming(target)), None)
        if found is not None:
            pods.append(PodView(str(target), target.namespace, found.labels, found.origin))
        elif labels is not None:
            pods.append(PodView(str(target), target.namespace, dict(labels), "given labels"))
        else:
            pods.append(PodView(str(target), target.namespace, {}, "no labels given: none assumed"))
    return pods


def describe_known_pods(known: Sequence[KnownPod]) -> list[PodView]:
    """Pods to explain a bare rule against: each known pod (a template stands for its pods)."""
    return [
        PodView(
            target=f"{pod.namespace}/{pod.name}" + ("-*" if pod.is_template else ""),
            namespace=pod.namespace,
            labels=pod.labels,
            origin=pod.origin,
        )
        for pod in known
    ]


def explain_event(
    policies: Sequence[Policy], event_rule: Rule, pods: Sequence[PodView]
) -> Explanation:
    """Explain the decision for an event rule on each pod (pure)."""
    index = PolicyIndex.from_policies(policies)
    ordered = sorted(policies, key=lambda policy: policy.ref)
    targets = tuple(explain_target(index, ordered, event_rule, pod) for pod in pods)
    return Explanation(event_rule=dict(event_rule), targets=targets)


def explain_target(
    index: PolicyIndex, policies: Sequence[Policy], event_rule: Rule, pod: PodView
) -> TargetExplanation:
    """Coverage of every policy, the scores of every covering rule, and the verdict."""
    coverage = tuple(describe_coverage(policy, pod) for policy in policies)
    covering = [
        policy for policy in policies if is_policy_covering(policy, pod.namespace, pod.labels)
    ]
    rules = tuple(score for policy in covering for score in score_entries(policy, event_rule))
    choice = choose_best_match(index, pod.namespace, pod.labels, event_rule)
    return TargetExplanation(pod, coverage, rules, decide_verdict(choice, pod))


def describe_coverage(policy: Policy, pod: PodView) -> Coverage:
    """Whether the policy covers the pod; the reason names the namespace or the labels."""
    namespace = policy.metadata.namespace or ""
    if namespace != pod.namespace:
        reason = f"policy is in namespace {namespace!r}, the pod in {pod.namespace!r}"
        return Coverage(policy.ref, False, reason)
    selector = policy.spec.pod_selector
    problems = [
        f"pod has no label {key!r} (selector wants {value!r})"
        if key not in pod.labels
        else f"label {key!r} is {pod.labels[key]!r}, selector wants {value!r}"
        for key, value in sorted(selector.items())
        if pod.labels.get(key) != value
    ]
    if problems:
        return Coverage(policy.ref, False, "; ".join(problems))
    if not selector:
        return Coverage(policy.ref, True, "empty podSelector: covers every pod in the namespace")
    return Coverage(policy.ref, True, f"podSelector {format_rule(selector)} is in the pod's labels")


def score_entries(policy: Policy, event_rule: Rule) -> list[RuleScore]:
    """Every strategy entry of the policy with its score (None: no match, and why)."""
    return [
        RuleScore(
            entry=f"{policy.ref}#{position}",
            rule=dict(entry.rule),
            action=entry.action.kind,
            score=score_rule(entry.rule, event_rule),
            is_fallback=is_default_rule(entry.rule),
            mismatches=describe_mismatches(entry.rule, event_rule),
        )
        for position, entry in enumerate(policy.spec.strategy)
    ]


def describe_mismatches(rule: Rule, event_rule: Rule) -> tuple[str, ...]:
    """The keys of the rule that the event does not match, each as a short sentence."""
    return tuple(
        f"{key}: event has none, rule {value!r}"
        if key not in event_rule
        else f"{key}: event {event_rule[key]!r}, rule {value!r}"
        for key, value in sorted(rule.items())
        if not (key == "type" and value == DEFAULT_TYPE) and event_rule.get(key) != value
    )


def decide_verdict(choice: Choice, pod: PodView) -> MatchVerdict:
    """The matcher's outcome and reason for the choice (:attr:`Choice.reason`), summarized."""
    winner = choice.winner
    summary = summarize_choice(choice, pod)
    if winner is None:
        return MatchVerdict("Unmatched", choice.reason, None, None, None, (), summary)
    ties = tuple(tie.ref for tie in choice.ties)
    action = winner.action.kind
    return MatchVerdict("Matched", choice.reason, winner.ref, action, winner.score, ties, summary)


def summarize_choice(choice: Choice, pod: PodView) -> str:
    """One line saying why the choice came out the way it did."""
    winner = choice.winner
    if winner is None and choice.is_covered:
        return "policies cover the pod, but no rule matches and none is a type: default"
    if winner is None:
        return f"no policy in namespace {pod.namespace!r} selects the pod's labels"
    if winner.is_fallback:
        summary = f"no rule matches; the fallback {winner.ref} applies"
    else:
        summary = f"{winner.ref} matches {winner.score} key(s), the most"
    if choice.ties:
        ties = ", ".join(tie.ref for tie in choice.ties)
        summary += f"; tied with {ties}: the first policy by name, then entry, wins"
    return summary


def to_data(explanation: Explanation) -> dict[str, Any]:
    """The explanation as JSON-ready data (camelCase keys, like the Kubernetes objects)."""
    return {
        "eventRule": explanation.event_rule,
        "targets": [target_to_data(target) for target in explanation.targets],
    }


def target_to_data(target: TargetExplanation) -> dict[str, Any]:
    """One target's explanation as JSON-ready data."""
    return {
        "target": target.pod.target,
        "namespace": target.pod.namespace,
        "labels": target.pod.labels,
        "labelsFrom": target.pod.origin,
        "policies": [
            {"policy": item.policy, "covers": item.is_covering, "reason": item.reason}
            for item in target.coverage
        ],
        "rules": [record_to_data(item) for item in target.rules],
        "decision": record_to_data(target.verdict),
    }


def record_to_data(record: RuleScore | MatchVerdict) -> dict[str, Any]:
    """A score or verdict as JSON-ready data: ``is_x`` fields as ``x``, tuples as lists."""
    return {
        field.name.removeprefix("is_"): list(value) if isinstance(value, tuple) else value
        for field in fields(record)
        for value in (getattr(record, field.name),)
    }
