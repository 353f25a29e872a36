"""Rules: matching, scoring, the fallback, and the cleaning of Go's empty values."""

from __future__ import annotations

from typing import Any

import pytest

from amtd.model.policies import clean_rule
from amtd.model.rules import format_rule, is_default_rule, is_rule_matching, score_rule

EVENT = {"type": "network-attack", "threatLevel": "medium", "source": "falco"}


@pytest.mark.parametrize(
    ("rule", "score"),
    [
        ({"type": "network-attack"}, 1),
        ({"threatLevel": "medium"}, 1),
        ({"type": "network-attack", "source": "falco"}, 2),
        ({"type": "network-attack", "threatLevel": "medium", "source": "falco"}, 3),
        ({}, 0),
        ({"type": "default"}, 1),
        ({"type": "default", "source": "falco"}, 2),
        ({"type": "Network-Attack"}, None),  # case-sensitive
        ({"type": "network-attack", "source": "kubearmor"}, None),
        ({"type": "network-attack", "namespace": "shop"}, None),  # extra key the event lacks
        ({"type": "default", "source": "kubearmor"}, None),
    ],
)
def test_score_counts_keys_of_matching_rules(rule: dict[str, str], score: int | None) -> None:
    assert score_rule(rule, EVENT) == score
    assert is_rule_matching(rule, EVENT) is (score is not None)


def test_extra_event_keys_do_not_stop_a_match() -> None:
    event = {**EVENT, "namespace": "shop", "container": "nginx"}
    assert score_rule({"type": "network-attack", "namespace": "shop"}, event) == 2


def test_default_rule_is_the_fallback_and_matches_any_type() -> None:
    assert is_default_rule({"type": "default"})
    assert is_default_rule({"type": "default", "source": "falco"})
    assert not is_default_rule({"type": "Default"})
    assert not is_default_rule({"threatLevel": "default"})
    assert is_rule_matching({"type": "default"}, {})
    assert is_rule_matching({"type": "default"}, {"type": "anything"})


def test_format_rule_is_sorted_and_stable() -> None:
    assert format_rule({"type": "x", "source": "falco"}) == "{source=falco, type=x}"
    assert format_rule({}) == "{}"


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ({"type": "x", "threatLevel": "", "source": ""}, {"type": "x"}),  # Go writes "" for unset
        ({"type": "", "threatLevel": "", "source": ""}, {}),
        (
            {"type": "x", "pod": "cart", "k8s.ns.name": "shop"},
            {"type": "x", "pod": "cart", "k8s.ns.name": "shop"},
        ),
        ({}, {}),
    ],
)
def test_clean_rule_drops_empty_values_and_keeps_extra_keys(
    value: dict[str, str], cleaned: dict[str, str]
) -> None:
    assert clean_rule(value) == cleaned


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "a rule is a map of string keys to string values, got NoneType"),
        (["type", "x"], "a rule is a map of string keys to string values, got list"),
        ("type=x", "a rule is a map of string keys to string values, got str"),
        ({"threatLevel": 5}, "rule value for 'threatLevel' must be a string, got int"),
        ({"type": None}, "rule value for 'type' must be a string, got NoneType"),
        ({"type": True}, "rule value for 'type' must be a string, got bool"),
        ({"type": ["a"]}, "rule value for 'type' must be a string, got list"),
        ({"": "x"}, "rule key '' must be a non-empty string"),
        ({1: "x"}, "rule key 1 must be a non-empty string"),
    ],
)
def test_clean_rule_rejects_non_string_maps(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        clean_rule(value)
    assert str(caught.value) == message
