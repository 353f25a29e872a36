"""Matching: choose the best rule for an event on one pod. Pure: no I/O, no clock.

The rules (docs/matching.md):

1. A policy covers a pod when it is in the pod's namespace and its ``podSelector`` is a subset of
   the pod's labels (an empty selector covers every pod in the namespace).
2. A rule matches an event when every key it sets has the same value in the event's rule; its
   score is the number of keys it sets.
3. ``type: default`` rules are the fallback, used only when no other rule matches.
4. The highest score wins across all covering policies. Ties go to the policy whose
   ``namespace/name`` sorts first, then to the earlier strategy entry; ties are reported.
5. No match and no fallback: the outcome is ``Unmatched``, never a silent drop.

Entries are indexed by namespace, exact selector and exact rule items, so an event costs a
dictionary lookup per covering selector and subset of its own rule's items instead of a scan of
every rule of every policy (how this differs from Phoenix: docs/matching.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations

from amtd.model.actions import Action
from amtd.model.policies import Policy
from amtd.model.rules import DEFAULT_TYPE, Rule, is_default_rule

MAX_INDEXED_KEYS = 10  # past this many event keys, subsets outnumber rules: scan instead

RuleKey = frozenset[tuple[str, str]]
SelectorKey = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Candidate:
    """One strategy entry that matches the event on the pod."""

    policy: Policy
    index: int
    rule: Rule
    action: Action
    score: int
    is_fallback: bool

    @property
    def ref(self) -> str:
        """``namespace/name#index``: how ties and explanations name the entry."""
        return f"{self.policy.ref}#{self.index}"

    def sort_key(self) -> tuple[bool, int, str, str, int]:
        """Best first: non-fallback, higher score, policy namespace/name, strategy order."""
        meta = self.policy.metadata
        return (self.is_fallback, -self.score, meta.namespace or "", meta.name, self.index)


@dataclass(frozen=True)
class Choice:
    """The outcome of matching: the winner (if any), the entries it tied with, all candidates."""

    winner: Candidate | None
    ties: tuple[Candidate, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    is_covered: bool = False

    @property
    def reason(self) -> str:
        """Why: ``BestMatch`` or ``FallbackRule`` won, else ``NoRuleMatched``/``NoPolicyCovers``."""
        if self.winner is None:
            return "NoRuleMatched" if self.is_covered else "NoPolicyCovers"
        return "FallbackRule" if self.winner.is_fallback else "BestMatch"


@dataclass
class PolicyIndex:
    """Strategy entries of many policies, keyed by namespace, exact selector and rule items."""

    entries: dict[tuple[str, SelectorKey, RuleKey], list[tuple[Policy, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    policies_by_namespace: dict[str, list[Policy]] = field(
        default_factory=lambda: defaultdict(list)
    )
    selectors_by_namespace: dict[str, dict[SelectorKey, list[Policy]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    @classmethod
    def from_policies(cls, policies: Iterable[Policy]) -> PolicyIndex:
        """Index every strategy entry of every policy."""
        index = cls()
        for policy in policies:
            namespace = policy.metadata.namespace or ""
            selector = frozenset(policy.spec.pod_selector.items())
            index.policies_by_namespace[namespace].append(policy)
            index.selectors_by_namespace[namespace].setdefault(selector, []).append(policy)
            for position, entry in enumerate(policy.spec.strategy):
                key = (namespace, selector, key_of_rule(entry.rule))
                index.entries[key].append((policy, position))
        return index

    @classmethod
    def combine(cls, parts: Iterable[PolicyIndex]) -> PolicyIndex:
        """One index of several namespaces' indexes (each keyed by its namespace already)."""
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        index = cls()
        for part in parts:
            index.entries.update(part.entries)
            index.policies_by_namespace.update(part.policies_by_namespace)
            index.selectors_by_namespace.update(part.selectors_by_namespace)
        return index


def key_of_rule(rule: Rule) -> RuleKey:
    """The index key of a rule: its items, without the fallback's ``type: default``."""
    if rule.get("type") != DEFAULT_TYPE:
        return frozenset(rule.items())  # the common case, without a per-item test
    return frozenset((key, value) for key, value in rule.items() if key != "type")


def is_policy_covering(policy: Policy, namespace: str, labels: Mapping[str, str]) -> bool:
    """The policy is in the pod's namespace and its selector is a subset of the pod's labels."""
    if (policy.metadata.namespace or "") != namespace:
        return False
    return all(labels.get(key) == value for key, value in policy.spec.pod_selector.items())


def select_covering_policies(
    policies: Iterable[Policy], namespace: str, labels: Mapping[str, str]
) -> list[Policy]:
    """The policies that cover a pod, sorted by name."""
    covering = [policy for policy in policies if is_policy_covering(policy, namespace, labels)]
    return sorted(covering, key=lambda policy: policy.metadata.name)


def enumerate_rule_keys(event_rule: Rule) -> Iterable[RuleKey]:
    """Every subset of the event's items: the keys of all rules that can match it.

    The same holds for a pod's labels and the selectors that cover it.
    """
    items = sorted(event_rule.items())
    for size in range(len(items) + 1):
        for subset in combinations(items, size):
            yield frozenset(subset)


def find_covering_selectors(
    index: PolicyIndex, namespace: str, labels: Mapping[str, str]
) -> list[SelectorKey]:
    """The distinct selectors of the namespace's policies that the pod's labels satisfy.

    Enumerating label subsets is cheaper while they are fewer than the distinct selectors.
    """
    selectors = index.selectors_by_namespace.get(namespace, {})
    if len(labels) <= MAX_INDEXED_KEYS and 2 ** len(labels) < len(selectors):
        return [key for key in enumerate_rule_keys(labels) if key in selectors]
    items = frozenset(labels.items())
    return [key for key in selectors if key <= items]


def collect_candidates(
    index: PolicyIndex, namespace: str, labels: Mapping[str, str], event_rule: Rule
) -> list[Candidate]:
    """All matching strategy entries of policies covering the pod, best first."""
    selectors = find_covering_selectors(index, namespace, labels)
    if len(event_rule) > MAX_INDEXED_KEYS:
        by_selector = index.selectors_by_namespace[namespace] if selectors else {}
        found = scan_entries((p for key in selectors for p in by_selector[key]), event_rule)
    else:
        rule_keys = list(enumerate_rule_keys(event_rule))
        found = [
            hit
            for selector in selectors
            for rule_key in rule_keys
            for hit in index.entries.get((namespace, selector, rule_key), ())
        ]
    candidates = [make_candidate(policy, position) for policy, position in found]
    return sorted(candidates, key=Candidate.sort_key)


def scan_entries(policies: Iterable[Policy], event_rule: Rule) -> list[tuple[Policy, int]]:
    """The slow path for events with very many keys: check each entry."""
    items = frozenset(event_rule.items())
    return [
        (policy, position)
        for policy in policies
        for position, entry in enumerate(policy.spec.strategy)
        if key_of_rule(entry.rule) <= items
    ]


def make_candidate(policy: Policy, position: int) -> Candidate:
    """Describe a matching strategy entry."""
    entry = policy.spec.strategy[position]
    return Candidate(
        policy=policy,
        index=position,
        rule=entry.rule,
        action=entry.action,
        score=len(entry.rule),
        is_fallback=is_default_rule(entry.rule),
    )


def choose_best_match(
    index: PolicyIndex, namespace: str, labels: Mapping[str, str], event_rule: Rule
) -> Choice:
    """Pick the winning entry for an event on a pod, and report ties (pure)."""
    candidates = collect_candidates(index, namespace, labels, event_rule)
    if not candidates:
        return Choice(winner=None, is_covered=is_pod_covered(index, namespace, labels))
    winner = candidates[0]
    ties = tuple(
        other
        for other in candidates[1:]
        if (other.is_fallback, other.score) == (winner.is_fallback, winner.score)
    )
    return Choice(winner, ties, tuple(candidates), is_covered=True)


def is_pod_covered(index: PolicyIndex, namespace: str, labels: Mapping[str, str]) -> bool:
    """Whether any policy covers the pod (asked only when nothing matched, to say why)."""
    return bool(find_covering_selectors(index, namespace, labels))
