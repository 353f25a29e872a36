"""Kubernetes LabelSelectors (matchLabels + matchExpressions) as the API's selector strings.

Pure; a malformed selector is refused through its manifest, naming the file and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amtd_stack.manifests import Manifest

SELECTOR_OPERATORS = {"In": "in", "NotIn": "notin"}


def format_label_selector(selector: Any, field: str, manifest: Manifest) -> str:
    """A LabelSelector (matchLabels + matchExpressions) as the API's selector string (pure)."""
    if not isinstance(selector, Mapping):
        raise manifest.refuse(field, "must be a LabelSelector mapping")
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        terms.append(format_expression(expression, f"{field}.matchExpressions[{index}]", manifest))
    return ",".join(terms)


def format_expression(expression: Any, field: str, manifest: Manifest) -> str:
    """One matchExpressions entry as selector syntax (pure)."""
    key = expression.get("key") if isinstance(expression, Mapping) else None
    operator = expression.get("operator") if isinstance(expression, Mapping) else None
    if not isinstance(key, str) or not key:
        raise manifest.refuse(f"{field}.key", "is required")
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    if operator not in SELECTOR_OPERATORS:
        raise manifest.refuse(f"{field}.operator", f"unknown operator {operator!r}")
    values = ",".join(str(v) for v in expression.get("values") or [])
    return f"{key} {SELECTOR_OPERATORS[operator]} ({values})"
