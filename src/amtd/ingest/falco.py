"""Falco alerts: Falco's JSON event (``http_output``, Falcosidekick webhook or CloudEvents) mapped
to a SecurityEvent the way Phoenix's falco-integrator does (docs/ingest.md). Pure.

Mapping: ``rule`` → ``rule.type``, ``priority`` → ``rule.threatLevel``, ``source`` →
``rule.source`` = ``FalcoIntegrator`` (env ``RULE_SOURCE``); extra rule keys when known,
``falcoSource`` (Falco's event source, e.g. ``syscall``), ``node`` (the hostname) and ``tags``
(amtd.ingest.tags); targets ``["<k8s.ns.name>/<k8s.pod.name>"]``, or for a k8saudit alert about a
pod (``Attach/Exec Pod``: ``ka.target.resource`` ``pods``, or subresource ``exec``/``attach``)
``["<ka.target.namespace>/<ka.target.name>"]``; description = ``output``. An alert without pod
context (a host alert, or a k8saudit alert about another kind of object) is ignored, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from amtd.ingest.alerts import Alert, Ignored, build_alert
from amtd.ingest.fields import (
    InvalidFieldError,
    is_absent,
    parse_rfc3339,
    read_description,
    read_object,
    read_text,
)
from amtd.ingest.tags import TAGS_KEY, read_tags
from amtd.model.targets import Target, check_namespace_name, check_pod_name

TOOL = "falco"
DEFAULT_RULE_SOURCE = "FalcoIntegrator"
CLOUDEVENT_TYPE = "falco.rule.output.v1"
CLOUDEVENT_SOURCES = frozenset({"https://falco.org", "falco.org"})
PRIORITIES = {
    name.lower(): name
    for name in ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice",
                 "Informational", "Debug")
} | {"info": "Informational"}  # fmt: skip
NAMESPACE_FIELD = "k8s.ns.name"
POD_FIELD = "k8s.pod.name"
# k8saudit alerts name the object of the API request instead (a pod only for some requests).
AUDIT_NAMESPACE_FIELD = "ka.target.namespace"
AUDIT_NAME_FIELD = "ka.target.name"
AUDIT_RESOURCE_FIELD = "ka.target.resource"
AUDIT_SUBRESOURCE_FIELD = "ka.target.subresource"
POD_SUBRESOURCES = frozenset({"exec", "attach"})
MAX_RULE_LENGTH = 512
MAX_DESCRIPTION_LENGTH = 4096


def check_falco_cloudevent(attributes: Mapping[str, str]) -> None:
    """A CloudEvent must be Falcosidekick's: its type, and its source old or new."""
    if attributes.get("type") != CLOUDEVENT_TYPE:
        shown = attributes.get("type", "")[:80]
        raise InvalidFieldError("type", f"expected {CLOUDEVENT_TYPE}, got {shown!r}")
    if attributes.get("source") not in CLOUDEVENT_SOURCES:
        shown = attributes.get("source", "")[:80]
        raise InvalidFieldError("source", f"expected https://falco.org or falco.org, got {shown!r}")


def parse_falco_alert(
    document: Mapping[str, Any], rule_source: str, extensions: Mapping[str, str] | None = None
) -> Alert | Ignored:
    """Map one Falco JSON event; ``extensions`` (CloudEvent) fill in a missing rule or priority."""
    fallback = extensions or {}
    target = read_pod_target(read_object(document, "output_fields"))
    rule = build_rule(document, fallback, rule_source)
    observed = read_text(document, "time", max_length=64)
    description = read_description(document, "output", MAX_DESCRIPTION_LENGTH) or ""
    observed_at = parse_rfc3339(observed, "time") if observed else None
    return build_alert(TOOL, target, rule, description, observed_at)


def build_rule(
    document: Mapping[str, Any], fallback: Mapping[str, str], rule_source: str
) -> dict[str, str]:
    """``{type, threatLevel, source}`` plus ``falcoSource``, ``node`` and ``tags`` if known."""
    rule_name = read_text(document, "rule", max_length=MAX_RULE_LENGTH) or fallback.get("rule")
    if not rule_name or len(rule_name) > MAX_RULE_LENGTH:
        raise InvalidFieldError("rule", "is required (a non-empty string)")
    rule = {
        "type": rule_name,
        "threatLevel": read_priority(document, fallback),
        "source": rule_source,
    }
    falco_source = read_text(document, "source", max_length=64) or fallback.get("eventsource")
    node = read_text(document, "hostname", max_length=253) or fallback.get("hostname")
    rule.update({key: value[:253] for key, value in
                 (("falcoSource", falco_source), ("node", node)) if value})  # fmt: skip
    tags = read_tags(document, "tags")
    if tags:
        rule[TAGS_KEY] = tags
    return rule


def read_priority(document: Mapping[str, Any], fallback: Mapping[str, str]) -> str:
    """Falco's priority, in its canonical spelling (``notice`` → ``Notice``)."""
    priority = read_text(document, "priority", max_length=32) or fallback.get("priority")
    if not priority:
        raise InvalidFieldError("priority", "is required")
    canonical = PRIORITIES.get(priority.strip().lower())
    if canonical is None:
        raise InvalidFieldError("priority", f"{priority[:32]!r} is not a Falco priority")
    return canonical


def read_pod_target(fields: Mapping[str, Any] | None) -> Target | Ignored:
    """The pod the alert is about; Ignored when Falco saw no pod (host or non-k8s alert)."""
    if fields is None:
        return Ignored("no output_fields: the alert names no pod")
    namespace, pod = fields.get(NAMESPACE_FIELD), fields.get(POD_FIELD)
    if is_absent(namespace) or is_absent(pod):
        return read_audit_target(fields)
    return Target(
        check_field(fields, NAMESPACE_FIELD, check_namespace_name),
        check_field(fields, POD_FIELD, check_pod_name),
    )


def read_audit_target(fields: Mapping[str, Any]) -> Target | Ignored:
    """A k8saudit alert's pod: ``ka.target.*`` when the request was about a pod; else Ignored."""
    if is_absent(fields.get(AUDIT_NAMESPACE_FIELD)) or is_absent(fields.get(AUDIT_NAME_FIELD)):
        return Ignored(f"no pod context ({NAMESPACE_FIELD} and {POD_FIELD} are not both set)")
    resource = read_text(fields, AUDIT_RESOURCE_FIELD, "output_fields.", max_length=253)
    subresource = read_text(fields, AUDIT_SUBRESOURCE_FIELD, "output_fields.", max_length=253)
    is_pod = resource == "pods" if resource is not None else subresource in POD_SUBRESOURCES
    if not is_pod:
        return Ignored(f"the k8saudit target is not a pod ({AUDIT_RESOURCE_FIELD} is not pods)")
    return Target(
        check_field(fields, AUDIT_NAMESPACE_FIELD, check_namespace_name),
        check_field(fields, AUDIT_NAME_FIELD, check_pod_name),
    )


def check_field(fields: Mapping[str, Any], key: str, check: Callable[[str], str]) -> str:
    """Validate a name with amtd.model.targets before it can reach any API path."""
    value = fields[key]
    path = f"output_fields.{key}"
    if not isinstance(value, str):
        raise InvalidFieldError(path, f"must be a string, got {type(value).__name__}")
    try:
        return check(value)
    except ValueError as error:
        raise InvalidFieldError(path, str(error)) from None
