"""Names: the rules a namespace, a name or a subresource must meet before it goes into a path.

Names reach API paths from hostile places (an event's ``securityEvent.name``, a target, a pod's
labels), and a path is a URL: ``?watch=true`` as a "name" turns a GET of one object into a watch
that never ends, ``../pods`` or ``a/b`` address another object. So every segment is checked with
the rules the API server itself applies (a namespace is a DNS-1123 label, an object of every kind
used here a DNS-1123 subdomain), with full matches (``$`` would let a trailing newline through),
and is percent-encoded anyway. A name that fails is refused before any request is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

LABEL_CHARS = "a-z, 0-9, '-'; starting and ending with a letter or digit"
SUBDOMAIN_CHARS = "a-z, 0-9, '-', '.'; starting and ending with a letter or digit"


class InvalidNameError(ValueError):
    """A namespace, name or subresource the API server would never accept: the input is bad."""

    def __init__(self, field: str, value: str, rule: str) -> None:
        shown = repr(value[:64]) + ("..." if len(value) > 64 else "")
        super().__init__(f"{field} {shown} is not a valid {rule}")
        self.field = field
        self.value = value


@dataclass(frozen=True)
class NameRule:
    """One of Kubernetes' name formats: a pattern (matched in full) and a maximum length."""

    description: str
    pattern: re.Pattern[str]
    max_length: int

    def check(self, field: str, value: object) -> str:
        """Return ``value``, or raise InvalidNameError naming ``field``."""
        if not isinstance(value, str):
            raise InvalidNameError(field, repr(value), f"{self.description} (not a string)")
        if len(value) > self.max_length or self.pattern.fullmatch(value) is None:
            raise InvalidNameError(field, value, self.description)
        return value

    def segment(self, field: str, value: object) -> str:
        """``value`` checked, then percent-encoded anyway (a no-op for a valid name)."""
        return quote(self.check(field, value), safe="")


_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = NameRule(
    f"DNS-1123 label (at most 63 characters: {LABEL_CHARS})", re.compile(_LABEL), 63
)
DNS1123_SUBDOMAIN = NameRule(
    f"DNS-1123 subdomain (at most 253 characters: {SUBDOMAIN_CHARS})",
    re.compile(rf"{_LABEL}(?:\.{_LABEL})*"),
    253,
)
# Subresources are fixed words of the API (status, eviction, ...), never user input.
SUBRESOURCE = NameRule("subresource (a lowercase word)", re.compile(r"[a-z]+"), 63)
