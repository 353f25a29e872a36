"""Targets: the ``namespace/name`` pod references a SecurityEvent points at.

Phoenix panics on a target without ``/`` and never resolves ``/name`` (docs/phoenix.md); here every
target is validated up front, with a message that says what is wrong.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# \Z, not $ (which lets a trailing newline through); no ^: callers match or fullmatch
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
MAX_NAMESPACE_LENGTH = 63
MAX_POD_NAME_LENGTH = 253


class Target(NamedTuple):
    """A pod named by namespace and name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def check_namespace_name(namespace: str) -> str:
    """Return the namespace, or raise ValueError saying why it is not a valid one."""
    return check_name(namespace, "namespace", MAX_NAMESPACE_LENGTH, DNS1123_LABEL,
                      "DNS-1123 label (a-z, 0-9, '-')")  # fmt: skip


def check_pod_name(name: str) -> str:
    """Return the pod name, or raise ValueError saying why it is not a valid one."""
    return check_name(name, "pod name", MAX_POD_NAME_LENGTH, DNS1123_SUBDOMAIN,
                      "DNS-1123 subdomain (a-z, 0-9, '-', '.')")  # fmt: skip


def check_name(value: str, what: str, max_length: int, pattern: re.Pattern[str], form: str) -> str:
    """``value`` if it is a non-empty ``form`` of at most ``max_length``; else ValueError."""
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > max_length:
        shown = f"{value[:40]!r}..." if len(value) > 64 else repr(value)  # a hostile one is long
        raise ValueError(f"{what} {shown} is longer than {max_length} characters")
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a {form}")
    return value


def parse_target(text: str) -> Target:
    """Parse ``namespace/name``; raise ValueError naming the problem."""
    if not isinstance(text, str):
        raise ValueError(f"target must be a string 'namespace/name', got {type(text).__name__}")
    if text.count("/") != 1:
        raise ValueError(f"target {text!r} must have the form 'namespace/name' (exactly one '/')")
    namespace, name = text.split("/")
    return Target(check_namespace_name(namespace), check_pod_name(name))
