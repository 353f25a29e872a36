"""Trigger filter compilation and evaluation (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from amtd_stack.eventing.filtering import FilterError, compile_trigger_filter, is_match

ADD = {"type": "dev.knative.apiserver.resource.add", "kind": "SecurityEvent", "source": "x"}
DELETE = {**ADD, "type": "dev.knative.apiserver.resource.delete"}
FALCO = {"type": "falco.rule.output.v1", "source": "https://falco.org"}

MATCHING: list[tuple[str, dict[str, Any], dict[str, str], bool]] = [
    ("no filter matches all", {}, ADD, True),
    ("exact hit", {"filters": [{"exact": {"kind": "SecurityEvent"}}]}, ADD, True),
    ("exact miss", {"filters": [{"exact": {"kind": "Pod"}}]}, ADD, False),
    ("exact is case-sensitive", {"filters": [{"exact": {"kind": "securityevent"}}]}, ADD, False),
    ("exact on missing attribute", {"filters": [{"exact": {"subject": "a"}}]}, ADD, False),
    ("prefix hit", {"filters": [{"prefix": {"type": "dev.knative.apiserver."}}]}, ADD, True),
    ("prefix miss", {"filters": [{"prefix": {"type": "falco."}}]}, ADD, False),
    ("suffix hit", {"filters": [{"suffix": {"type": ".add"}}]}, ADD, True),
    ("suffix miss", {"filters": [{"suffix": {"type": ".delete"}}]}, ADD, False),
    ("not suffix keeps add", {"filters": [{"not": {"suffix": {"type": ".delete"}}}]}, ADD, True),
    (
        "not suffix drops delete",
        {"filters": [{"not": {"suffix": {"type": ".delete"}}}]},
        DELETE,
        False,
    ),
    (
        "entries are ANDed",
        {"filters": [{"exact": {"kind": "SecurityEvent"}}, {"suffix": {"type": ".delete"}}]},
        ADD,
        False,
    ),
    (
        "any of two sources",
        {
            "filters": [
                {"any": [{"exact": {"source": "falco.org"}}, {"prefix": {"source": "https://"}}]}
            ]
        },
        FALCO,
        True,
    ),
    ("any none hit", {"filters": [{"any": [{"exact": {"source": "y"}}]}]}, FALCO, False),
    (
        "all nested",
        {"filters": [{"all": [{"exact": {"source": "x"}}, {"exact": {"kind": "SecurityEvent"}}]}]},
        ADD,
        True,
    ),
    (
        "exact with two pairs: both hold",
        {"filters": [{"exact": {"kind": "SecurityEvent", "source": "x"}}]},
        ADD,
        True,
    ),
    (
        "exact with two pairs: one fails",
        {"filters": [{"exact": {"kind": "SecurityEvent", "source": "y"}}]},
        ADD,
        False,
    ),
    (
        "prefix with two pairs",
        {"filters": [{"prefix": {"type": "dev.knative.", "kind": "Security"}}]},
        ADD,
        True,
    ),
    (
        "suffix with two pairs: one fails",
        {"filters": [{"suffix": {"type": ".add", "kind": "Pod"}}]},
        ADD,
        False,
    ),
    (
        "not of a two-pair exact",
        {"filters": [{"not": {"exact": {"kind": "SecurityEvent", "type": DELETE["type"]}}}]},
        ADD,
        True,
    ),
    ("legacy exact", {"filter": {"attributes": {"type": ADD["type"]}}}, ADD, True),
    ("legacy miss", {"filter": {"attributes": {"type": "other"}}}, ADD, False),
    ("legacy empty value matches any", {"filter": {"attributes": {"type": ""}}}, ADD, True),
    (
        "filters win over filter",
        {"filter": {"attributes": {"type": "other"}}, "filters": [{"exact": {"source": "x"}}]},
        ADD,
        True,
    ),
]


@pytest.mark.parametrize(
    ("spec", "attributes", "expected"), [c[1:] for c in MATCHING], ids=[c[0] for c in MATCHING]
)
def test_filter_matches(spec: dict[str, Any], attributes: dict[str, str], expected: bool) -> None:
    assert is_match(compile_trigger_filter(spec), attributes) is expected


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("cesql", {"filters": [{"cesql": "type = 'a'"}]}, "spec.filters[0].cesql"),
    ("unknown dialect", {"filters": [{"regex": {"type": "a.*"}}]}, "spec.filters[0].regex"),
    (
        "two dialects in one entry",
        {"filters": [{"exact": {"type": "a"}, "prefix": {"type": "b"}}]},
        "spec.filters[0]",
    ),
    ("prefix with no pair", {"filters": [{"prefix": {}}]}, "spec.filters[0].prefix"),
    (
        "empty exact value (Knative would skip the filter)",
        {"filters": [{"exact": {"type": "a", "source": ""}}]},
        "spec.filters[0].exact.source",
    ),
    (
        "bad name in a second pair",
        {"filters": [{"suffix": {"type": ".add", "Kind": "x"}}]},
        "spec.filters[0].suffix.Kind",
    ),
    ("upper-case attribute", {"filters": [{"exact": {"Type": "a"}}]}, "spec.filters[0].exact.Type"),
    (
        "dash in attribute",
        {"filters": [{"exact": {"event-source": "a"}}]},
        "spec.filters[0].exact.event-source",
    ),
    (
        "underscore",
        {"filters": [{"suffix": {"event_source": "a"}}]},
        "spec.filters[0].suffix.event_source",
    ),
    ("digit first", {"filters": [{"exact": {"1type": "a"}}]}, "spec.filters[0].exact.1type"),
    ("non-string value", {"filters": [{"exact": {"retries": 3}}]}, "spec.filters[0].exact.retries"),
    (
        "nested bad dialect",
        {"filters": [{"any": [{"cesql": "x"}]}]},
        "spec.filters[0].any[0].cesql",
    ),
    (
        "not with two dialects",
        {"filters": [{"not": {"exact": {"a": "b"}, "suffix": {"a": "b"}}}]},
        "spec.filters[0].not",
    ),
    ("empty any", {"filters": [{"any": []}]}, "spec.filters[0].any"),
    ("legacy bad name", {"filter": {"attributes": {"Kind": "x"}}}, "spec.filter.attributes.Kind"),
    ("legacy not a mapping", {"filter": {"attributes": ["type"]}}, "spec.filter.attributes"),
]


@pytest.mark.parametrize(("spec", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_filters_are_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_trigger_filter(spec)
    assert caught.value.field == field
    assert field in str(caught.value)
