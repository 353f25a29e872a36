"""Alerts: a security tool's alert, reduced to what a SecurityEvent needs, and what became of it.

Pure. Names are deterministic, without state: the same alert (tool, rule, target) within one time
window always gets the same SecurityEvent name, so a repeat is a 409 on create — a counted
duplicate — and two alerts in the same second are no longer lost to a name collision (Phoenix
named them ``<tool>-<pod>-<unix seconds>``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from amtd.ingest.fields import shorten
from amtd.model.objects import Object
from amtd.model.securityeventmanifests import build_security_event_manifest
from amtd.model.targets import Target
from amtd.model.timestamps import format_unix_time

DEFAULT_WINDOW_SECONDS = 60
MAX_DESCRIPTION_LENGTH = 4096
NAME_PREFIX_LENGTH = 40
HASH_LENGTH = 16
ALERT_TIME_ANNOTATION = "amtd.r6security.com/alert-time"

IngestResult = Literal["created", "duplicate", "ignored", "rejected", "failed"]


@dataclass(frozen=True)
class Alert:
    """One alert about one pod, ready to become a SecurityEvent."""

    tool: str  # "falco", "kubearmor" or "alertmanager": the name prefix
    target: Target
    rule: Mapping[str, str]
    description: str
    observed_at: float | None = None  # Unix seconds of the alert itself, when it says
    dedup_key: str = ""  # the tool's own identity of the alert (Alertmanager's fingerprint)


@dataclass(frozen=True)
class Ignored:
    """An alert that is fine but not for us (no pod, or a kind we do not act on)."""

    reason: str


def build_alert(
    tool: str, target: Target | Ignored, rule: Mapping[str, str], description: str,
    observed_at: float | None, dedup_key: str = "",
) -> Alert | Ignored:  # fmt: skip
    """The Alert about ``target``; the Ignored itself when the alert named no pod."""
    if isinstance(target, Ignored):
        return target
    return Alert(tool, target, rule, description, observed_at, dedup_key)


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one item: the answer's per-item record."""

    result: IngestResult
    name: str = ""
    reason: str = ""
    field: str = ""
    detail: str = ""
    label: str = ""  # the item's place in a batch

    def to_json(self) -> dict[str, Any]:
        """Only the keys that say something."""
        keys = ("label", "result", "name", "reason", "field", "detail")
        return {key: getattr(self, key) for key in keys if getattr(self, key)}


def read_window_seconds(env: Mapping[str, str]) -> int:
    """``DEDUP_WINDOW_SECONDS`` (default 60); a bad value falls back to the default."""
    try:
        value = int(env.get("DEDUP_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS))
    except ValueError:
        return DEFAULT_WINDOW_SECONDS
    return value if value > 0 else DEFAULT_WINDOW_SECONDS


def find_window_start(seconds: float, window: int) -> int:
    """The start (Unix s) of the dedup window holding the moment."""
    return math.floor(seconds / window) * window


def make_security_event_name(alert: Alert, received_at: float, window: int) -> str:
    """``<tool>-<pod prefix>-<hash of tool, rule type, target, window[, dedup key]>``, a valid
    object name; alerts without a dedup key keep the names they always had."""
    moment = alert.observed_at if alert.observed_at is not None else received_at
    identity = "\x1f".join(
        (alert.tool, alert.rule.get("type", ""), str(alert.target),
         str(find_window_start(moment, window)))
        + ((alert.dedup_key,) if alert.dedup_key else ())
    )  # fmt: skip
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    prefix = alert.target.name[:NAME_PREFIX_LENGTH].rstrip("-.")
    return f"{alert.tool}-{prefix}-{digest}"


def build_alert_manifest(
    alert: Alert, name: str, ingested_by: str, extra: Mapping[str, str] | None = None
) -> Object:
    """The alert's SecurityEvent: Phoenix's spec, its own time as an annotation when it says,
    and the ``extra`` annotations (the trace context, amtd.model.traces)."""
    annotations = {
        **({ALERT_TIME_ANNOTATION: format_unix_time(alert.observed_at)}
           if alert.observed_at is not None else {}),
        **(extra or {}),
    }  # fmt: skip
    description = shorten(alert.description, MAX_DESCRIPTION_LENGTH)
    return build_security_event_manifest(
        name, alert.target, alert.rule, description,
        ingested_by=ingested_by, annotations=annotations,
    )  # fmt: skip
