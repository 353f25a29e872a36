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
    if not namespace:
        raise ValueError("namespace is empty")
    if len(namespace) > MAX_NAMESPACE_LENGTH:
        raise ValueError(
            f"namespace {namespace!r} is longer than {MAX_NAMESPACE_LENGTH} characters"
        )
    if not DNS1123_LABEL.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} is not a DNS-1123 label (a-z, 0-9, '-')")
    return namespace


def check_pod_name(name: str) -> str:
    """Return the pod name, or raise ValueError saying why it is not a valid one."""
    if not name:
        raise ValueError("pod name is empty")
    if len(name) > MAX_POD_NAME_LENGTH:
        raise ValueError(
            f"pod name {name[:40]!r}... is longer than {MAX_POD_NAME_LENGTH} characters"
        )
    if not DNS1123_SUBDOMAIN.fullmatch(name):
        raise ValueError(f"pod name {name!r} is not a DNS-1123 subdomain (a-z, 0-9, '-', '.')")
    return name


def parse_target(text: str) -> Target:
    """Parse ``namespace/name``; raise ValueError naming the problem."""
    if not isinstance(text, str):
        raise ValueError(f"target must be a string 'namespace/name', got {type(text).__name__}")
    if text.count("/") != 1:
        raise ValueError(f"target {text!r} must have the form 'namespace/name' (exactly one '/')")
    namespace, name = text.split("/")
    return Target(check_namespace_name(namespace), check_pod_name(name))
