"""Payloads: the body each receiver kind takes, rendered from confirmed notifications. Pure.

- Slack incoming webhook: ``{"text": ...}``, one line per execution; ``&``, ``<`` and ``>`` in
  the values are escaped as Slack asks, so no value can mention ``<!channel>`` or make a link.
- Microsoft Teams (a Workflows "post to a channel when a webhook request is received" URL): a
  message with one Adaptive Card (1.4) attachment: a title and one TextBlock per line; the
  values' Markdown characters are escaped.
- Generic webhook: JSON with the rendered ``text``, the structured fields and ``id``, the
  CloudEvent id: the key to de-duplicate by, as delivery is at least once.

The operator's template is trusted (it is part of the Secret); the values are not.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amtd.notify.deadletternotices import NOTICE_TYPE, DeadLetterNotice
from amtd.notify.notifications import COMPLETED_TYPE, Notification

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# What makes emphasis, code or a link mid-line in an Adaptive Card's Markdown subset.
MARKDOWN = re.compile(r"([\\`*_\[\]()~])")
COMPLETED_TITLE = "amtd: moving-target defense acted"
DEAD_LETTER_TITLE = "amtd: an event was not delivered"
# Not configurable (the Secret's template is for executions): what the dead-letter Event says.
DEAD_LETTER_TEMPLATE = "amtd: DEAD LETTER on $kind $involved: $message (Event $namespace/$name)"

Escape = Callable[[str], str]


@dataclass(frozen=True)
class Message:
    """What to send: one line per item (``template`` over its values) and its structured fields."""

    event_id: str
    event_type: str
    title: str
    template: str
    values: tuple[Mapping[str, str], ...]
    fields: tuple[Mapping[str, str], ...]


def escape_slack(value: str) -> str:
    """A value safe in Slack ``mrkdwn`` text (its three control characters escaped)."""
    return "".join(SLACK_ESCAPES.get(char, char) for char in value)


def escape_markdown(value: str) -> str:
    """A value shown literally in Teams Markdown (backslash before each special character)."""
    return MARKDOWN.sub(r"\\\1", value)


def keep(value: str) -> str:
    """A value as it is (JSON fields need no escaping)."""
    return value


def make_completion_message(
    event_id: str, template: str, notifications: Sequence[Notification]
) -> Message:
    """The message about confirmed executions (placeholders: amtd.notify.settings)."""
    values = tuple(values_of(each, event_id) for each in notifications)
    fields = tuple(fields_of(each) for each in notifications)
    return Message(event_id, COMPLETED_TYPE, COMPLETED_TITLE, template, values, fields)


def make_dead_letter_message(notice: DeadLetterNotice) -> Message:
    """The message about one recorded dead letter."""
    fields = {
        "namespace": notice.namespace, "name": notice.name, "kind": notice.kind,
        "involved": notice.involved, "message": notice.message, "count": notice.count,
        "time": notice.time,
    }  # fmt: skip
    return Message(notice.event_id, NOTICE_TYPE, DEAD_LETTER_TITLE, DEAD_LETTER_TEMPLATE,
                   (fields,), (fields,))  # fmt: skip


def values_of(notification: Notification, event_id: str) -> dict[str, str]:
    """The template's placeholders (amtd.notify.settings.PLACEHOLDERS): the fields, lower-cased,
    and the event id."""
    return {**{k.lower(): v for k, v in fields_of(notification).items()}, "id": event_id}


def fields_of(notification: Notification) -> dict[str, str]:
    """One execution's structured fields, in the event contract's spelling."""
    return {
        "securityEvent": notification.security_event, "stepId": notification.step_id,
        "target": notification.target, "namespace": notification.namespace,
        "pod": notification.pod, "action": notification.action, "result": notification.result,
        "reason": notification.reason, "message": notification.message,
        "executor": notification.executor, "time": notification.time,
        "policy": notification.policy, "ruleIndex": notification.rule_index,
        "rule": notification.rule, "threatLevel": notification.threat_level,
        "ruleSource": notification.rule_source,
    }  # fmt: skip


def render_lines(message: Message, escape: Escape) -> list[str]:
    """One line per item: the template with the escaped values."""
    template = string.Template(message.template)
    return [
        template.safe_substitute({k: escape(v) for k, v in values.items()})
        for values in message.values
    ]


def render_slack(message: Message) -> Any:
    """A Slack incoming-webhook message."""
    return {"text": "\n".join(render_lines(message, escape_slack))}


def render_teams(message: Message) -> Any:
    """A Teams Workflows webhook message carrying one Adaptive Card."""
    title = {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium"}
    lines = [{"type": "TextBlock", "text": line, "wrap": True}
             for line in render_lines(message, escape_markdown)]  # fmt: skip
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [title, *lines],
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json"}  # fmt: skip
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}


def render_webhook(message: Message) -> Any:
    """The generic webhook's JSON: the event id (the de-duplication key), text and fields."""
    return {
        "id": message.event_id,
        "type": message.event_type,
        "text": "\n".join(render_lines(message, keep)),
        "notifications": [dict(fields) for fields in message.fields],
    }


RENDERERS: dict[str, Callable[[Message], Any]] = {
    "slack": render_slack,
    "teams": render_teams,
    "webhook": render_webhook,
}


def render_payload(kind: str, message: Message) -> Any:
    """The body for a receiver of ``kind`` (one of amtd.notify.settings.KINDS)."""
    return RENDERERS[kind](message)
