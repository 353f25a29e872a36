"""KubeArmor alerts: KubeArmor's ``Alert`` JSON (relay stdout, via Fluent Bit, an OTel collector or
a CloudEvent) mapped to a SecurityEvent as Phoenix's kubearmor-integrator does (docs/ingest.md).
Pure.

Mapping: ``PolicyName`` → ``rule.type``, ``Severity`` → ``rule.threatLevel``, ``rule.source`` =
``KubeArmorIntegrator`` (env ``RULE_SOURCE``), plus ``operation`` and ``node`` when known; targets
``["<NamespaceName>/<PodName>"]``; description = Message, Operation and Resource, Action/Result
(Phoenix kept only Result); ``Tags`` and ``ATags`` → ``rule.tags`` (amtd.ingest.tags). Only
policy alerts (``Type`` ``Matched…``) by default; env ``KUBEARMOR_EXTRA_TYPES`` (comma list, or
``*``) admits others, such as ``SystemEvent``.

Ignored, not refused (a collector forwards whatever the relay prints, and one 4xx would make
Fluent Bit drop the whole chunk): the relay's own log lines (plain text, or zap JSON with
``level``/``msg`` and no ``Type``), and alerts whose namespace or pod is KubeArmor's placeholder
for "no pod" (``Unknown``, ``container_namespace``: host or unresolved containers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd.ingest.alerts import Alert, Ignored, build_alert
from amtd.ingest.fields import (
    InvalidFieldError,
    check_encodable,
    check_unix_seconds,
    decode_json,
    is_absent,
    parse_rfc3339,
    read_text,
    require_text,
    shorten,
)
from amtd.ingest.tags import TAGS_KEY, read_tags
from amtd.model.targets import Target, check_namespace_name, check_pod_name

TOOL = "kubearmor"
DEFAULT_RULE_SOURCE = "KubeArmorIntegrator"
EXTRA_TYPES_ENV = "KUBEARMOR_EXTRA_TYPES"
POLICY_TYPE_PREFIX = "Matched"
# Collectors wrap the alert line: Fluent Bit in "log", OTel's filelog receiver in "body".
WRAPPER_KEYS = ("log", "body", "message")
MAX_WRAPPING = 3
MAX_NAME_LENGTH = 512
MAX_PART_LENGTH = 1024
SEVERITIES = frozenset(str(level) for level in range(1, 11))
# What KubeArmor writes when an event has no pod: never a valid name, so never a real pod.
PLACEHOLDERS = frozenset({"Unknown", "container_namespace"})
# The relay logs with zap's production (JSON) encoder: these keys, never "Type".
LOG_LINE_KEYS = frozenset({"level", "msg"})


@dataclass(frozen=True)
class KubeArmorSettings:
    """What to admit and how to label it."""

    rule_source: str = DEFAULT_RULE_SOURCE
    extra_types: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KubeArmorSettings:
        """``RULE_SOURCE`` and ``KUBEARMOR_EXTRA_TYPES``."""
        extra = frozenset(item.strip() for item in env.get(EXTRA_TYPES_ENV, "").split(","))
        source = env.get("RULE_SOURCE", "").strip() or DEFAULT_RULE_SOURCE
        return cls(rule_source=source, extra_types=extra - {""})

    def is_admitted(self, alert_type: str) -> bool:
        """Policy alerts always; other types only when listed (or ``*``)."""
        return (
            alert_type.startswith(POLICY_TYPE_PREFIX)
            or alert_type in self.extra_types
            or "*" in self.extra_types
        )


def parse_kubearmor_item(value: Any, settings: KubeArmorSettings) -> Alert | Ignored:
    """One item of a body: unwrapped, then mapped; a log line that is no alert is Ignored."""
    item = unwrap_alert(value)
    if isinstance(item, Ignored):
        return item
    if "Type" not in item and item.keys() >= LOG_LINE_KEYS:
        return Ignored("a log line of the KubeArmor relay (level, msg), not an alert")
    return parse_kubearmor_alert(item, settings)


def unwrap_alert(value: Any) -> Mapping[str, Any] | Ignored:
    """The alert object, taken out of a collector's ``log``/``body`` wrapper (string or object);
    Ignored when the wrapped line is plain text (the relay's own log, not an alert)."""
    for _ in range(MAX_WRAPPING):
        if not isinstance(value, dict):
            raise InvalidFieldError("item", f"must be a JSON object, got {type(value).__name__}")
        wrapper = next((key for key in WRAPPER_KEYS if key in value), None)
        if "Type" in value or wrapper is None:
            return value
        inner = value[wrapper]
        value = read_wrapped_line(inner, wrapper) if isinstance(inner, str) else inner
        if isinstance(value, Ignored):
            return value
    raise InvalidFieldError("item", "is wrapped too deeply")


def read_wrapped_line(line: str, wrapper: str) -> Any:
    """A collected line: its JSON value, or Ignored when it is text, not a JSON object."""
    try:
        value = decode_json(line, wrapper)
    except InvalidFieldError:
        value = None
    if not isinstance(value, dict):
        return Ignored(f"{wrapper} is a text line (a log of the relay), not a KubeArmor alert")
    return check_encodable(value, wrapper)


def parse_kubearmor_alert(
    document: Mapping[str, Any], settings: KubeArmorSettings
) -> Alert | Ignored:
    """Map one KubeArmor alert; Ignored for other alert types and for alerts with no pod."""
    alert_type = require_text(document, "Type", max_length=64)
    if not settings.is_admitted(alert_type):
        return Ignored(f"Type {alert_type} is not a policy alert (see {EXTRA_TYPES_ENV})")
    rule = build_rule(document, alert_type, settings.rule_source)
    target = read_pod_target(document)
    return build_alert(TOOL, target, rule, describe_alert(document), read_alert_time(document))


def build_rule(document: Mapping[str, Any], alert_type: str, rule_source: str) -> dict[str, str]:
    """``{type, threatLevel, source}`` plus ``operation``, ``node`` and ``tags`` when present."""
    policy = read_text(document, "PolicyName", max_length=MAX_NAME_LENGTH)
    if policy is None and alert_type.startswith(POLICY_TYPE_PREFIX):
        raise InvalidFieldError("PolicyName", f"is required for Type {alert_type}")
    rule = {"type": policy or alert_type, "source": rule_source}
    severity = read_severity(document)
    operation = read_text(document, "Operation", max_length=64)
    node = read_text(document, "HostName", max_length=253)
    tags = read_tags(document, "Tags", "ATags")
    extras = (("threatLevel", severity), ("operation", operation), ("node", node), (TAGS_KEY, tags))
    rule.update({key: value for key, value in extras if value})
    return rule


def read_severity(document: Mapping[str, Any]) -> str | None:
    """``"1"`` to ``"10"`` (a number is accepted too); None when the policy set none."""
    value = document.get("Severity")
    if is_absent(value):
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or text.strip() not in SEVERITIES:
        raise InvalidFieldError("Severity", f"{str(value)[:20]!r} is not a severity from 1 to 10")
    return text.strip()


def read_pod_target(document: Mapping[str, Any]) -> Target | Ignored:
    """``NamespaceName/PodName``, validated; Ignored for host alerts (no pod)."""
    namespace = read_text(document, "NamespaceName", max_length=253)
    pod = read_text(document, "PodName", max_length=253)
    if namespace is None or pod is None:
        return Ignored("no pod context (NamespaceName and PodName are not both set)")
    if namespace in PLACEHOLDERS or pod in PLACEHOLDERS:
        shown = namespace if namespace in PLACEHOLDERS else pod
        return Ignored(
            f"no pod context (KubeArmor's placeholder {shown!r}: a host or unknown container)"
        )
    try:
        checked_namespace = check_namespace_name(namespace)
    except ValueError as error:
        raise InvalidFieldError("NamespaceName", str(error)) from None
    try:
        return Target(checked_namespace, check_pod_name(pod))
    except ValueError as error:
        raise InvalidFieldError("PodName", str(error)) from None


def describe_alert(document: Mapping[str, Any]) -> str:
    """``<Message> (<Operation> <Resource>; <Action>: <Result>)`` from the parts present."""
    part = {key: read_part(document, key) for key in
            ("Message", "Operation", "Resource", "Action", "Result")}  # fmt: skip
    what = " ".join(text for text in (part["Operation"], part["Resource"]) if text)
    verdict = ": ".join(text for text in (part["Action"], part["Result"]) if text)
    details = "; ".join(text for text in (what, verdict) if text)
    message = part["Message"] or "KubeArmor alert"
    return f"{message} ({details})" if details else message


def read_part(document: Mapping[str, Any], key: str) -> str:
    """A descriptive field: must be text if present; long text is cut, not refused."""
    value = document.get(key)
    if is_absent(value):
        return ""
    if not isinstance(value, str):
        raise InvalidFieldError(key, f"must be a string, got {type(value).__name__}")
    return shorten(value, MAX_PART_LENGTH)


def read_alert_time(document: Mapping[str, Any]) -> float | None:
    """``Timestamp`` (Unix s), else ``UpdatedTime`` (RFC 3339), else None."""
    if not is_absent(document.get("Timestamp")):
        return check_unix_seconds(document["Timestamp"], "Timestamp")
    updated = read_text(document, "UpdatedTime", max_length=64)
    return parse_rfc3339(updated, "UpdatedTime") if updated else None
