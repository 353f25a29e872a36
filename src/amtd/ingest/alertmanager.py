"""Alertmanager: a Prometheus Alertmanager webhook notification (payload version 4) mapped to one
SecurityEvent per firing alert, as Phoenix's prometheus-integrator does (docs/ingest.md). Pure.

Mapping, from each alert's ``labels`` (which hold the group's common labels too): target
``["<namespace>/<pod>"]``; ``rule.type`` = ``rule``, else ``alertname``; ``rule.threatLevel`` =
``priority``, else ``severity``; ``rule.source`` = ``PrometheusIntegrator`` (env
``RULE_SOURCE``). Description from the ``summary`` and ``description`` annotations. ``startsAt``
is the alert's time, and ``fingerprint`` (Alertmanager's hash of the label set) joins the dedup
identity, so the re-sends Alertmanager makes of one firing alert are duplicates. Resolved alerts
and alerts without a pod are ignored, with the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amtd.ingest.alerts import Alert, Ignored, build_alert
from amtd.ingest.documents import MAX_DOCUMENTS, TooManyDocumentsError
from amtd.ingest.fields import (
    InvalidFieldError,
    is_absent,
    json_type_name,
    parse_rfc3339,
    read_description,
    read_object,
    read_text,
    require_text,
)
from amtd.model.targets import Target, check_namespace_name, check_pod_name

logger = logging.getLogger(__name__)

TOOL = "alertmanager"
DEFAULT_RULE_SOURCE = "PrometheusIntegrator"
WEBHOOK_VERSION = "4"
# Label keys, first found wins: Phoenix's prometheus-integrator read the same ones.
RULE_LABELS = ("rule", "alertname")
LEVEL_LABELS = ("priority", "severity")
NAMESPACE_LABEL = "namespace"
POD_LABEL = "pod"
FINGERPRINT = re.compile(r"[0-9a-fA-F]{1,64}")
MAX_NAME_LENGTH = 512
MAX_LEVEL_LENGTH = 64
MAX_PART_LENGTH = 2048


@dataclass(frozen=True)
class AlertmanagerSettings:
    """How to label the SecurityEvents."""

    rule_source: str = DEFAULT_RULE_SOURCE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertmanagerSettings:
        """``RULE_SOURCE``."""
        return cls(rule_source=env.get("RULE_SOURCE", "").strip() or DEFAULT_RULE_SOURCE)


def read_notification_alerts(document: Mapping[str, Any]) -> Sequence[Any]:
    """The ``alerts`` of a version 4 notification (each checked later, on its own)."""
    version = read_text(document, "version", max_length=16)
    if version != WEBHOOK_VERSION:
        shown = "absent" if version is None else repr(version)
        raise InvalidFieldError("version", f"is {shown}: only webhook payload version 4 is read")
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidFieldError("alerts", f"must be an array, got {json_type_name(alerts)}")
    if len(alerts) > MAX_DOCUMENTS:
        raise TooManyDocumentsError(f"{len(alerts)} alerts: at most {MAX_DOCUMENTS} per request")
    truncated = document.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:  # Alertmanager's max_alerts dropped some
        logger.warning("the notification says %d alert(s) were left out (max_alerts)", truncated)
    return alerts


def parse_alertmanager_alert(value: Any, settings: AlertmanagerSettings) -> Alert | Ignored:
    """Map one alert of a notification; Ignored when it is resolved or names no pod."""
    if not isinstance(value, dict):
        raise InvalidFieldError("alert", f"must be a JSON object, got {json_type_name(value)}")
    status = require_text(value, "status", max_length=16)
    if status == "resolved":
        return Ignored("status resolved: the alert has ended, there is nothing to act on")
    if status != "firing":
        raise InvalidFieldError("status", f"{status!r} is neither firing nor resolved")
    labels = read_object(value, "labels") or {}
    rule = build_rule(labels, settings.rule_source)
    target = read_pod_target(labels)
    description = describe_alert(value, rule["type"])
    return build_alert(TOOL, target, rule, description, read_start(value), read_fingerprint(value))


def build_rule(labels: Mapping[str, Any], rule_source: str) -> dict[str, str]:
    """``{type, threatLevel, source}``; threatLevel only when a label gives one."""
    rule_type = read_first_label(labels, RULE_LABELS, MAX_NAME_LENGTH)
    if rule_type is None:
        raise InvalidFieldError("labels.alertname", "is required (or labels.rule)")
    rule = {"type": rule_type, "source": rule_source}
    level = read_first_label(labels, LEVEL_LABELS, MAX_LEVEL_LENGTH)
    if level is not None:
        rule["threatLevel"] = level
    return rule


def read_first_label(labels: Mapping[str, Any], keys: Sequence[str], max_length: int) -> str | None:
    """The first of ``keys`` that is set (each one that is present must be a short string)."""
    values = [read_text(labels, key, "labels.", max_length) for key in keys]
    return next((value for value in values if value is not None), None)


def read_pod_target(labels: Mapping[str, Any]) -> Target | Ignored:
    """``labels.namespace/labels.pod``, validated; Ignored when either is missing."""
    if is_absent(labels.get(NAMESPACE_LABEL)) or is_absent(labels.get(POD_LABEL)):
        return Ignored(
            f"no pod context (labels {NAMESPACE_LABEL} and {POD_LABEL} are not both set)"
        )
    return Target(
        check_label(labels, NAMESPACE_LABEL, check_namespace_name),
        check_label(labels, POD_LABEL, check_pod_name),
    )


def check_label(labels: Mapping[str, Any], key: str, check: Callable[[str], str]) -> str:
    """A name validated with amtd.model.targets before it can reach any API path."""
    value = read_text(labels, key, "labels.", max_length=253) or ""
    try:
        return check(value)
    except ValueError as error:
        raise InvalidFieldError(f"labels.{key}", str(error)) from None


def describe_alert(alert: Mapping[str, Any], rule_type: str) -> str:
    """``<summary>: <description>`` from the annotations present, else a generic line."""
    annotations = read_object(alert, "annotations") or {}
    parts = [
        read_description(annotations, key, MAX_PART_LENGTH) for key in ("summary", "description")
    ]
    text = ": ".join(part for part in parts if part)
    return text or f"Alertmanager alert {rule_type}"


def read_start(alert: Mapping[str, Any]) -> float | None:
    """``startsAt`` (RFC 3339) as Unix seconds, or None when absent."""
    starts_at = read_text(alert, "startsAt", max_length=64)
    return parse_rfc3339(starts_at, "startsAt") if starts_at else None


def read_fingerprint(alert: Mapping[str, Any]) -> str:
    """``fingerprint`` (hex), lower-cased; "" when absent (then dedup is by rule and pod)."""
    fingerprint = read_text(alert, "fingerprint", max_length=64)
    if fingerprint is None:
        return ""
    if not FINGERPRINT.fullmatch(fingerprint):
        raise InvalidFieldError("fingerprint", f"{fingerprint[:20]!r} is not a hex fingerprint")
    return fingerprint.lower()
