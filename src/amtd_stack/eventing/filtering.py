"""Trigger filters: compile a Trigger spec into a filter tree and evaluate it (pure logic).

Compilation applies the Knative webhook rules (one dialect per entry; exact/prefix/suffix hold
one or more attribute: value pairs, each of which must hold, as since Knative 1.7; attribute
names ``^[a-z][a-z0-9]*$``). CESQL and unknown dialects are refused with the offending field
path, so a bad Trigger stops the stack instead of silently matching. So are an empty pair map
and an empty value, which the webhook lets through but Knative's filter then skips: such an
entry would match every event in a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd_stack.errors import ManifestError

ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
PAIR_DIALECTS = frozenset({"exact", "prefix", "suffix"})
NESTED_DIALECTS = frozenset({"all", "any", "not"})


class FilterError(ManifestError):
    """A Trigger filter the stack refuses to run; ``field`` is the path of the bad field."""


@dataclass(frozen=True)
class Filter:
    """One node of a compiled filter: a pair dialect, a combinator, or ``any_value``."""

    dialect: str
    attribute: str = ""
    value: str = ""
    children: tuple[Filter, ...] = ()


MATCH_ALL = Filter("all")


def compile_trigger_filter(spec: Mapping[str, Any], field: str = "spec") -> Filter:
    """Compile a Trigger spec's ``filters`` (which win) or legacy ``filter.attributes`` (pure)."""
    filters = spec.get("filters")
    if filters:
        return compile_filter_list(filters, f"{field}.filters")
    legacy = spec.get("filter")
    if legacy is None:
        return MATCH_ALL
    if not isinstance(legacy, Mapping):
        raise FilterError(f"{field}.filter", "must be a mapping with 'attributes'")
    return compile_legacy_attributes(legacy.get("attributes") or {}, f"{field}.filter.attributes")


def compile_legacy_attributes(attributes: Any, field: str) -> Filter:
    """Legacy ``filter.attributes``: exact matches ANDed; ``""`` matches any value (pure)."""
    if not isinstance(attributes, Mapping):
        raise FilterError(field, "must be a mapping of attribute name to value")
    children = []
    for name, value in attributes.items():
        check_attribute(name, value, f"{field}.{name}")
        children.append(Filter("any_value") if value == "" else Filter("exact", name, value))
    return Filter("all", children=tuple(children))


def compile_filter_list(entries: Any, field: str) -> Filter:
    """Compile a list of filter entries that must all hold (pure)."""
    if not isinstance(entries, list) or not entries:
        raise FilterError(field, "must be a non-empty list of filters")
    return Filter(
        "all", children=tuple(compile_entry(e, f"{field}[{i}]") for i, e in enumerate(entries))
    )


def compile_entry(entry: Any, field: str) -> Filter:
    """Compile one filter entry holding exactly one dialect (pure)."""
    if not isinstance(entry, Mapping) or len(entry) != 1:
        found = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
        raise FilterError(field, f"must hold exactly one dialect, found {found}")
    ((dialect, body),) = entry.items()
    where = f"{field}.{dialect}"
    if dialect in PAIR_DIALECTS:
        return compile_pair(dialect, body, where)
    if dialect == "not":
        return Filter("not", children=(compile_entry(body, where),))
    if dialect in NESTED_DIALECTS:
        return Filter(dialect, children=compile_filter_list(body, where).children)
    if dialect == "cesql":
        raise FilterError(where, "the cesql dialect is not supported by the local stack")
    raise FilterError(where, f"unknown filter dialect {dialect!r}")


def compile_pair(dialect: str, body: Any, field: str) -> Filter:
    """Compile ``exact``/``prefix``/``suffix``: one or more pairs, all of which must hold (pure)."""
    if not isinstance(body, Mapping) or not body:
        raise FilterError(field, "must hold at least one attribute: value pair")
    pairs = []
    for name, value in body.items():
        check_attribute(name, value, f"{field}.{name}")
        if value == "":
            problem = "must not be empty (Knative skips such a filter: it matches every event)"
            raise FilterError(f"{field}.{name}", problem)
        pairs.append(Filter(dialect, name, value))
    return pairs[0] if len(pairs) == 1 else Filter("all", children=tuple(pairs))


def check_attribute(name: Any, value: Any, field: str) -> None:
    """Refuse attribute names Knative refuses and non-string values (pure)."""
    if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
        raise FilterError(field, f"attribute name {name!r} must match {ATTRIBUTE_NAME.pattern}")
    if not isinstance(value, str):
        raise FilterError(field, f"value must be a string, got {type(value).__name__}")


def is_match(node: Filter, attributes: Mapping[str, str]) -> bool:
    """True when the CloudEvent attributes (names to string values) pass the filter (pure)."""
    if node.dialect == "all":
        return all(is_match(child, attributes) for child in node.children)
    if node.dialect == "any":
        return any(is_match(child, attributes) for child in node.children)
    if node.dialect == "not":
        return not is_match(node.children[0], attributes)
    if node.dialect == "any_value":
        return True
    actual = attributes.get(node.attribute)
    if actual is None:
        return False
    if node.dialect == "exact":
        return actual == node.value
    if node.dialect == "prefix":
        return actual.startswith(node.value)
    return actual.endswith(node.value)
