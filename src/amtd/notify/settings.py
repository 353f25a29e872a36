"""Notify settings: the ``amtd-notify`` Secret's values (as env), checked once at start-up. Pure.

``NOTIFY_KIND`` is ``slack``, ``teams`` or ``webhook`` (empty or ``none``: notifications off);
``NOTIFY_URL`` the incoming-webhook URL (a secret: it is never shown, only its kind);
``NOTIFY_TEMPLATE`` an optional :class:`string.Template` for one execution's line;
``NOTIFY_TOKEN`` an optional bearer token, sent to a generic webhook only.
A bad value is a :class:`SettingsError` naming the variable, never the URL.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("slack", "teams", "webhook")
OFF = ("", "none")
DEFAULT_TEMPLATE = (
    'amtd: $action $result on pod $target ($reason): rule "$rule" ($threatlevel) matched by '
    "policy $policy#$ruleindex; SecurityEvent $securityevent"
)
# What a template may name: every field of a notification (amtd.notify.payloads fills them).
PLACEHOLDERS = (
    "securityevent", "stepid", "target", "namespace", "pod", "action", "result", "reason",
    "message", "executor", "time", "policy", "ruleindex", "rule", "threatlevel", "rulesource",
    "id",
)  # fmt: skip
MAX_TEMPLATE_CHARS = 2000
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 8.0  # the post must end before the Broker's delivery timeout (10 s)


class SettingsError(ValueError):
    """A setting that can never work; the message names the variable, never the URL."""


@dataclass(frozen=True, repr=False)
class NotifySettings:
    """Where and how notifications go; ``kind`` None when they are off."""

    kind: str | None
    url: str = ""
    template: str = DEFAULT_TEMPLATE
    token: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __repr__(self) -> str:  # the URL and token are secrets: never in a log line
        return f"NotifySettings(kind={self.kind!r}, timeout_s={self.timeout_s})"


def read_settings(env: Mapping[str, str]) -> NotifySettings:
    """The settings from the environment; SettingsError for a value that can never work."""
    kind = env.get("NOTIFY_KIND", "").strip().lower()
    if kind in OFF:
        return NotifySettings(None)
    if kind not in KINDS:
        raise SettingsError(f"NOTIFY_KIND {kind[:40]!r} is not one of {', '.join(KINDS)}, none")
    url = env.get("NOTIFY_URL", "").strip()
    check_url(url)
    template = env.get("NOTIFY_TEMPLATE", "").strip() or DEFAULT_TEMPLATE
    check_template(template)
    token = env.get("NOTIFY_TOKEN", "").strip()
    return NotifySettings(kind, url, template, token, read_timeout(env))


def check_url(url: str) -> None:
    """An absolute http(s) URL with a host; the error never repeats it."""
    if not url:
        raise SettingsError("NOTIFY_URL is empty")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SettingsError("NOTIFY_URL is not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError("NOTIFY_URL must be an http:// or https:// URL with a host")


def check_template(template: str) -> None:
    """A :class:`string.Template` naming only :data:`PLACEHOLDERS`, at most 2000 characters."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise SettingsError(f"NOTIFY_TEMPLATE is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        string.Template(template).substitute(dict.fromkeys(PLACEHOLDERS, ""))
    except KeyError as error:
        known = ", ".join(f"${name}" for name in PLACEHOLDERS)
        raise SettingsError(f"NOTIFY_TEMPLATE names ${error.args[0]}; known: {known}") from None
    except ValueError as error:  # a lone or malformed "$" (write "$$" for a dollar sign)
        raise SettingsError(f"NOTIFY_TEMPLATE: {error} (write $$ for a dollar sign)") from None


def read_timeout(env: Mapping[str, str]) -> float:
    """``NOTIFY_TIMEOUT_S``: seconds to connect and to wait for the answer, 0.1 to 8."""
    text = env.get("NOTIFY_TIMEOUT_S", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"NOTIFY_TIMEOUT_S {text[:20]!r} is not a number") from None
    if not 0.1 <= value <= MAX_TIMEOUT_S:
        raise SettingsError(f"NOTIFY_TIMEOUT_S must be from 0.1 to {MAX_TIMEOUT_S}")
    return value
