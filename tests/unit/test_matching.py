"""Best match, table-driven.

One case per rule in amtd.decide.matching's docstring (docs/matching.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from amtd.decide import matching
from amtd.decide.matching import Choice, PolicyIndex, choose_best_match, select_covering_policies
from amtd.model.policies import Policy, clean_rule
from unit.samples import load_phoenix_amtd, make_policy


def decide(
    policies: Sequence[Policy], namespace: str, labels: Mapping[str, str], event: Mapping[str, str]
) -> Choice:
    """Index the policies and choose, as the matcher does."""
    return choose_best_match(PolicyIndex.from_policies(policies), namespace, labels, event)


@dataclass(frozen=True)
class Case:
    """Policies, a pod and an event; the expected winner (``ns/name#i``), ties and coverage."""

    policies: tuple[Policy, ...]
    event: dict[str, str]
    winner: str | None
    ties: tuple[str, ...] = ()
    namespace: str = "demo"
    labels: dict[str, str] = field(default_factory=lambda: {"app": "web", "tier": "front"})
    is_covered: bool = True


CASES = {
    # 1. Coverage: selector is a subset of the pod's labels, in the pod's namespace.
    "selector subset covers": Case(
        (make_policy("p", selector={"app": "web"}, rules=[{"type": "x"}]),),
        {"type": "x"},
        "demo/p#0",
    ),
    "selector equal to labels covers": Case(
        (make_policy("p", selector={"app": "web", "tier": "front"}, rules=[{"type": "x"}]),),
        {"type": "x"},
        "demo/p#0",
    ),
    "selector with an extra key does not cover": Case(
        (make_policy("p", selector={"app": "web", "team": "a"}, rules=[{"type": "x"}]),),
        {"type": "x"},
        None,
        is_covered=False,
    ),
    "selector value differs: no cover": Case(
        (make_policy("p", selector={"app": "db"}, rules=[{"type": "x"}]),),
        {"type": "x"},
        None,
        is_covered=False,
    ),
    "label values are case-sensitive": Case(
        (make_policy("p", selector={"app": "Web"}, rules=[{"type": "x"}]),),
        {"type": "x"},
        None,
        is_covered=False,
    ),
    "empty selector covers every pod": Case(
        (make_policy("p", selector={}, rules=[{"type": "x"}]),),
        {"type": "x"},
        "demo/p#0",
        labels={},
    ),
    "other namespace never covers": Case(
        (make_policy("p", namespace="other", selector={}, rules=[{"type": "x"}]),),
        {"type": "x"},
        None,
        is_covered=False,
    ),
    # 2. Rules match by exact, case-sensitive values; score = number of keys.
    "exact value matches": Case(
        (make_policy("p", rules=[{"type": "network-attack"}]),),
        {"type": "network-attack", "source": "falco"},
        "demo/p#0",
    ),
    "values are case-sensitive": Case(
        (make_policy("p", rules=[{"type": "Network-Attack"}]),),
        {"type": "network-attack"},
        None,
    ),
    "a key the event lacks never matches": Case(
        (make_policy("p", rules=[{"type": "x", "source": "falco"}]),), {"type": "x"}, None
    ),
    "more keys win over order": Case(
        (make_policy("p", rules=[{"type": "x"}, {"type": "x", "source": "falco"}]),),
        {"type": "x", "source": "falco"},
        "demo/p#1",
    ),
    "more keys win across policies": Case(
        (
            make_policy("a", rules=[{"type": "x"}]),
            make_policy("b", rules=[{"type": "x", "threatLevel": "high"}]),
        ),
        {"type": "x", "threatLevel": "high"},
        "demo/b#0",
    ),
    "extra rule keys count": Case(
        (make_policy("p", rules=[{"type": "x"}, {"type": "x", "k8s.ns.name": "demo"}]),),
        {"type": "x", "k8s.ns.name": "demo"},
        "demo/p#1",
    ),
    # 3. The fallback is used only when nothing else matches.
    "fallback when nothing matches": Case(
        (make_policy("p", rules=[{"type": "default"}, {"type": "x"}]),), {"type": "y"}, "demo/p#0"
    ),
    "fallback loses to an equal score": Case(
        (make_policy("p", rules=[{"type": "default"}, {"threatLevel": "medium"}]),),
        {"type": "y", "threatLevel": "medium"},
        "demo/p#1",
    ),
    "fallback with more keys still loses": Case(
        (make_policy("p", rules=[{"type": "default", "source": "falco"}, {"source": "falco"}]),),
        {"type": "y", "source": "falco"},
        "demo/p#1",
    ),
    "empty rule matches anything and beats the fallback": Case(
        (make_policy("p", rules=[{"type": "default"}, {}]),), {"type": "y"}, "demo/p#1"
    ),
    "most specific fallback wins among fallbacks": Case(
        (make_policy("p", rules=[{"type": "default"}, {"type": "default", "source": "falco"}]),),
        {"type": "y", "source": "falco"},
        "demo/p#1",
    ),
    "fallback's own keys must match": Case(
        (make_policy("p", rules=[{"type": "default", "source": "falco"}]),),
        {"type": "y", "source": "kubearmor"},
        None,
    ),
    "an event typed 'default' is matched like any other": Case(
        (make_policy("p", rules=[{"type": "default"}, {"source": "s"}]),),
        {"type": "default", "source": "s"},
        "demo/p#1",
    ),
    # 4. Ties: policy namespace/name, then strategy order; reported.
    "tie across policies goes to the first name": Case(
        (make_policy("b", rules=[{"type": "x"}]), make_policy("a", rules=[{"type": "x"}])),
        {"type": "x"},
        "demo/a#0",
        ties=("demo/b#0",),
    ),
    "tie inside a policy goes to the earlier entry": Case(
        (make_policy("p", rules=[{"source": "s"}, {"type": "x"}]),),
        {"type": "x", "source": "s"},
        "demo/p#0",
        ties=("demo/p#1",),
    ),
    "fallbacks of two policies tie (not a collision)": Case(
        (
            make_policy("z", rules=[{"type": "default"}]),
            make_policy("m", rules=[{"type": "default"}]),
        ),
        {"type": "y"},
        "demo/m#0",
        ties=("demo/z#0",),
    ),
    "lower scores are not ties": Case(
        (
            make_policy("a", rules=[{"type": "x"}]),
            make_policy("b", rules=[{"type": "x", "source": "s"}]),
        ),
        {"type": "x", "source": "s"},
        "demo/b#0",
    ),
    "a later policy is still considered": Case(
        (
            make_policy("a", selector={"app": "other"}, rules=[{"type": "x"}]),
            make_policy("b", rules=[{"type": "x"}]),
        ),
        {"type": "x"},
        "demo/b#0",
    ),
    # 5. Unmatched, with the reason.
    "covered but no rule matches": Case(
        (make_policy("p", rules=[{"type": "x"}]),), {"type": "y"}, None, is_covered=True
    ),
    "no policies at all": Case((), {"type": "y"}, None, is_covered=False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_best_match(name: str) -> None:
    case = CASES[name]
    choice = decide(case.policies, case.namespace, case.labels, case.event)
    assert (choice.winner.ref if choice.winner else None) == case.winner
    assert tuple(tie.ref for tie in choice.ties) == case.ties
    assert choice.is_covered is case.is_covered
    if choice.winner:
        assert choice.candidates[0] == choice.winner


PHOENIX_CASES = {
    "network-attack": ({"type": "network-attack"}, 2, 1, "quarantine", False),
    "threatLevel medium": ({"threatLevel": "medium"}, 4, 1, "quarantine", False),
    "full filesystem-corruption": (
        {"type": "filesystem-corruption", "threatLevel": "medium", "source": "falco"},
        3,
        3,
        "quarantine",
        False,
    ),
    "timer test": (
        {"type": "test", "threatLevel": "warning", "source": "TimerBackend"},
        1,
        3,
        "delete",
        False,
    ),
    "nothing matches: default": ({"type": "Terminal shell in container"}, 0, 1, "disable", True),
    "Go empty values": (
        {"type": "network-attack", "threatLevel": "", "source": ""},
        2,
        1,
        "quarantine",
        False,
    ),
    "Go empty values, medium": (
        {"type": "", "threatLevel": "medium", "source": ""},
        4,
        1,
        "quarantine",
        False,
    ),
}


@pytest.mark.parametrize("name", list(PHOENIX_CASES))
def test_phoenix_sample(name: str) -> None:
    event, index, score, action, is_fallback = PHOENIX_CASES[name]
    policy = Policy.model_validate(load_phoenix_amtd())
    labels = {"app": "nginx", "mtdSecured": "true"}
    choice = decide([policy], "demo", labels, clean_rule(event))  # as the event model reads it
    assert choice.winner is not None
    assert (choice.winner.index, choice.winner.score) == (index, score)
    assert (choice.winner.action.kind, choice.winner.is_fallback) == (action, is_fallback)
    assert choice.ties == ()


def test_phoenix_sample_does_not_cover_unlabelled_pods() -> None:
    policy = Policy.model_validate(load_phoenix_amtd())
    choice = decide([policy], "demo", {"app": "nginx"}, {"type": "network-attack"})
    assert (choice.winner, choice.is_covered) == (None, False)


def test_candidates_are_every_match_best_first() -> None:
    policies = [
        make_policy("b", rules=[{"type": "default"}, {"type": "x"}, {"type": "y"}]),
        make_policy("a", rules=[{"type": "x", "source": "s"}, {"source": "s"}]),
    ]
    choice = decide(policies, "demo", {"app": "web"}, {"type": "x", "source": "s"})
    assert [c.ref for c in choice.candidates] == ["demo/a#0", "demo/a#1", "demo/b#1", "demo/b#0"]
    assert [c.score for c in choice.candidates] == [2, 1, 1, 1]
    assert [c.is_fallback for c in choice.candidates] == [False, False, False, True]


def test_select_covering_policies_sorted_by_name() -> None:
    policies = [
        make_policy("c", selector={"app": "web"}),
        make_policy("a", selector={}),
        make_policy("b", selector={"app": "db"}),
        make_policy("d", namespace="other", selector={}),
    ]
    covering = select_covering_policies(policies, "demo", {"app": "web"})
    assert [policy.metadata.name for policy in covering] == ["a", "c"]


MANY_KEYS = {f"key{n:02d}": f"v{n}" for n in range(matching.MAX_INDEXED_KEYS + 2)}


def scan_and_index_policies() -> list[Policy]:
    """Policies with rules over the many-keyed event: matching, not matching, and fallbacks."""
    return [
        make_policy(
            "a", rules=[{"key00": "v0"}, {"key01": "v1", "key02": "v2"}, {"type": "default"}]
        ),
        make_policy("b", rules=[{"key03": "v3", "key04": "v4"}, {"key05": "nope"}]),
        make_policy(
            "c", selector={"app": "db"}, rules=[{"key00": "v0", "key01": "v1", "key02": "v2"}]
        ),
        make_policy("d", namespace="other", rules=[dict(list(MANY_KEYS.items())[:5])]),
    ]


def test_scan_path_for_many_keyed_events_agrees_with_the_index_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policies = scan_and_index_policies()
    scanned = decide(policies, "demo", {"app": "web"}, MANY_KEYS)
    monkeypatch.setattr(matching, "MAX_INDEXED_KEYS", len(MANY_KEYS))
    indexed = decide(policies, "demo", {"app": "web"}, MANY_KEYS)
    assert [c.ref for c in scanned.candidates] == [c.ref for c in indexed.candidates]
    assert scanned.winner is not None and scanned.winner.ref == "demo/a#1"
    assert [tie.ref for tie in scanned.ties] == ["demo/b#0"]


def test_many_labels_and_many_selectors_take_both_coverage_paths() -> None:
    policies = [
        make_policy(f"p{n:02d}", selector={"app": f"a{n}"}, rules=[{"type": "x"}])
        for n in range(20)
    ]
    policies.append(
        make_policy(
            "wide", selector={"app": "a3", "tier": "t"}, rules=[{"type": "x", "source": "s"}]
        )
    )
    few_labels = {"app": "a3", "tier": "t"}  # 4 subsets < 21 selectors: enumerate subsets
    many_labels = {**few_labels, **{f"l{n}": "v" for n in range(matching.MAX_INDEXED_KEYS)}}
    for labels in (few_labels, many_labels):
        choice = decide(policies, "demo", labels, {"type": "x", "source": "s"})
        assert [c.ref for c in choice.candidates] == ["demo/wide#0", "demo/p03#0"]
