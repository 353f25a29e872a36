"""Rules: open maps of string keys to string values, on events and in policies.

Phoenix knows three keys (``type``, ``threatLevel``, ``source``); integrations may add more. A
policy rule matches an event when every key it sets has the same value in the event.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_TYPE = "default"
UPSTREAM_KEYS = ("type", "threatLevel", "source")

Rule = Mapping[str, str]


def is_default_rule(rule: Rule) -> bool:
    """A ``type: default`` rule is the fallback, used only when no other rule matches."""
    return rule.get("type") == DEFAULT_TYPE


def is_rule_matching(rule: Rule, event_rule: Rule) -> bool:
    """Every key the rule sets has the same value (case-sensitive) in the event's rule.

    The fallback's own ``type: default`` is not compared: it stands for "any type".
    """
    return all(
        event_rule.get(key) == value
        for key, value in rule.items()
        if not (key == "type" and value == DEFAULT_TYPE)
    )


def score_rule(rule: Rule, event_rule: Rule) -> int | None:
    """The number of keys matched, or None when the rule does not match (pure)."""
    if not is_rule_matching(rule, event_rule):
        return None
    return len(rule)


def format_rule(rule: Rule) -> str:
    """A compact, stable text form for logs and tables: ``{source=falco, type=x}``."""
    return "{" + ", ".join(f"{key}={rule[key]}" for key in sorted(rule)) + "}"
