"""Label and field selectors, parsed once and matched against objects (pure).

Label syntax: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, comma-separated.
Field syntax: `path=v`, `path==v`, `path!=v` over the fields the real server supports per kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .apierrors import bad_request

Matcher = Callable[[Mapping[str, Any]], bool]

_SET_TERM = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)$")
_EQ_TERM = re.compile(r"^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$")
_EXISTS_TERM = re.compile(r"^(!?)\s*([^\s!=(),]+)$")

COMMON_FIELDS = ("metadata.name", "metadata.namespace")
KIND_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Pod": (
        "status.phase",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "status.podIP",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "type",
        "source",
        "reportingComponent",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
}


def split_terms(selector: str) -> list[str]:
    """Split at commas that are not inside parentheses; drop empty terms."""
    terms: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return [t.strip() for t in terms if t.strip()]


def _label_term(term: str) -> Matcher:
    if found := _SET_TERM.match(term):
        key, op, raw = found.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if found := _EQ_TERM.match(term):
        key, op, value = found.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if found := _EXISTS_TERM.match(term):
        negated, key = found.groups()
        return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
    raise bad_request(f"unable to parse requirement: {term!r}")


def parse_label_selector(selector: str | None) -> Matcher:
    """A predicate over a labels mapping; 400 BadRequest on syntax errors."""
    matchers = [_label_term(t) for t in split_terms(selector or "")]
    return lambda labels: all(m(labels) for m in matchers)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string value at a dotted path ("" when absent), as field selectors compare it."""
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, Mapping) and path == "source":
        node = node.get("component")
    return "" if node is None else str(node)


def parse_field_selector(selector: str | None, kind: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over whole objects; 400 for syntax errors or fields the kind cannot select."""
    allowed = COMMON_FIELDS + KIND_FIELDS.get(kind, ())
    checks: list[tuple[str, bool, str]] = []
    for term in split_terms(selector or ""):
        found = _EQ_TERM.match(term)
        if not found:
            raise bad_request(f"invalid field selector: {term!r}")
        path, op, value = found.groups()
        if path not in allowed:
            raise bad_request(f'field label not supported: "{path}" for kind {kind}')
        checks.append((path, op != "!=", value))
    return lambda obj: all((field_value(obj, p) == v) == eq for p, eq, v in checks)


def is_selected(
    obj: Mapping[str, Any],
    labels: Matcher,
    fields: Callable[[Mapping[str, Any]], bool],
) -> bool:
    """Whether an object passes both a label and a field selector."""
    return labels(obj.get("metadata", {}).get("labels") or {}) and fields(obj)


def compile_label_selector(selector: Mapping[str, Any]) -> Callable[[Mapping[str, str]], bool]:
    """:func:`match_label_selector_object` for one selector, as a predicate on labels; a
    matchLabels-only selector (the common case) is one C-level subset test per pod."""
    if selector.get("matchExpressions"):
        return partial(match_label_selector_object, selector)
    wanted = dict(selector.get("matchLabels") or {}).items()
    return lambda labels: wanted <= labels.items()


def match_label_selector_object(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Match a structured LabelSelector (matchLabels + matchExpressions) as workloads use it."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True
