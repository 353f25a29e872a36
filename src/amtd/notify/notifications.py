"""Notifications: an ``action.completed`` event read, and confirmed by its SecurityEvent. Pure.

Anyone who can post to the Broker can send an ``action.completed`` event, so what a notification
says comes from the cluster, not from the event: each execution the event names is notified only
when the SecurityEvent's status records that step (its uid the one the event names), and the
result, reason and message shown are the recorded ones, with the policy and rule of the step's
decision and the alert's rule from the spec. Every string is cut and cleaned of control
characters (:func:`~amtd.model.texts.clean_text`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amtd.model.texts import clean_text

COMPLETED_TYPE = "com.r6security.amtd.action.completed.v1"
MAX_VALUE_CHARS = 256
MAX_ID_CHARS = 512  # an action.completed id is at most ~220 characters (docs/events.md)
MAX_EXECUTIONS = 100  # one event holds one executor's steps of one decision: far fewer


class InvalidCompletionError(ValueError):
    """An event that is not a readable ``action.completed``: answered 400, never retried."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class Completion:
    """What an ``action.completed`` event claims: its id, SecurityEvent and step ids."""

    event_id: str
    security_event: str
    uid: str
    step_ids: tuple[str, ...]


@dataclass(frozen=True)
class Notification:
    """One recorded execution, with the decision and alert behind it."""

    security_event: str
    step_id: str
    target: str
    action: str
    result: str
    reason: str
    message: str
    executor: str
    time: str
    policy: str
    rule_index: str
    rule: str
    threat_level: str
    rule_source: str

    @property
    def namespace(self) -> str:
        """The pod's namespace (``target`` is ``namespace/pod``)."""
        return self.target.partition("/")[0]

    @property
    def pod(self) -> str:
        """The pod's name."""
        return self.target.partition("/")[2]


def read_completion(attributes: Mapping[str, Any], data: Any) -> Completion:
    """The claims of an ``action.completed`` event; InvalidCompletionError naming what is wrong."""
    if attributes.get("type") != COMPLETED_TYPE:
        shown = show(attributes.get("type"))
        raise InvalidCompletionError("UnsupportedEventType", f"{shown} is not {COMPLETED_TYPE}")
    if not isinstance(data, Mapping):
        raise InvalidCompletionError("InvalidCompletion", "data is not a JSON object")
    reference = data.get("securityEvent")
    name = reference.get("name") if isinstance(reference, Mapping) else None
    uid = reference.get("uid") if isinstance(reference, Mapping) else None
    if not isinstance(name, str) or not name or not isinstance(uid, str) or not uid:
        raise InvalidCompletionError("InvalidCompletion", "data.securityEvent needs name and uid")
    event_id = clean_text(str(attributes.get("id", "")), MAX_ID_CHARS)
    return Completion(event_id, name, uid, read_step_ids(data))


def read_step_ids(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``stepId`` of every item of ``data.executions`` (at least one)."""
    executions = data.get("executions")
    if not isinstance(executions, list) or not 0 < len(executions) <= MAX_EXECUTIONS:
        detail = f"data.executions must list 1 to {MAX_EXECUTIONS} executions"
        raise InvalidCompletionError("InvalidCompletion", detail)
    step_ids = [item.get("stepId") if isinstance(item, Mapping) else None for item in executions]
    for index, step_id in enumerate(step_ids):
        if not isinstance(step_id, str) or not step_id:
            detail = f"data.executions[{index}].stepId must be a non-empty string"
            raise InvalidCompletionError("InvalidCompletion", detail)
    return tuple(str(step_id) for step_id in step_ids)


def confirm_completion(
    completion: Completion, found: Mapping[str, Any] | None
) -> tuple[list[Notification], list[str]]:
    """The notifications the SecurityEvent as read now (``found``) confirms, and one line per
    step it does not (the whole event, when the object is gone or another incarnation)."""
    name = completion.security_event
    if found is None:
        return [], [f"SecurityEvent {show(name)} does not exist"]
    uid = (found.get("metadata") or {}).get("uid")
    if uid != completion.uid:
        return [], [f"SecurityEvent {show(name)} is uid {show(uid)}, not {show(completion.uid)}"]
    status = found.get("status") or {}
    executions = index_by_step(status.get("executions"))
    decisions = index_by_step(status.get("decisions"))
    rule = (found.get("spec") or {}).get("rule") or {}
    notified, unconfirmed = [], []
    for step_id in dict.fromkeys(completion.step_ids):  # a step listed twice is notified once
        execution = executions.get(step_id)
        if execution is None:
            unconfirmed.append(f"step {show(step_id)} has no execution in SecurityEvent {name}")
            continue
        decision = decisions.get(step_id, {})
        notified.append(make_notification(name, step_id, execution, decision, rule))
    return notified, unconfirmed


def index_by_step(items: Any) -> dict[str, Mapping[str, Any]]:
    """Status records (executions or decisions) by their ``stepId``."""
    if not isinstance(items, Sequence):
        return {}
    return {
        item["stepId"]: item
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("stepId"), str)
    }


def make_notification(
    name: str, step_id: str, execution: Mapping[str, Any], decision: Mapping[str, Any],
    rule: Any,
) -> Notification:  # fmt: skip
    """One notification from the recorded execution, its decision and the alert's rule."""
    rule = rule if isinstance(rule, Mapping) else {}
    return Notification(
        security_event=show(name), step_id=show(step_id),
        target=show(execution.get("target") or decision.get("target")),
        action=show(execution.get("action")), result=show(execution.get("result")),
        reason=show(execution.get("reason")), message=show(execution.get("message")),
        executor=show(execution.get("executor")), time=show(execution.get("time")),
        policy=show(decision.get("policy")), rule_index=show(decision.get("ruleIndex")),
        rule=show(rule.get("type")), threat_level=show(rule.get("threatLevel")),
        rule_source=show(rule.get("source")),
    )  # fmt: skip


def show(value: Any) -> str:
    """A value as shown in a notification: text, cut and without control characters; "" for
    none."""
    if value is None:
        return ""
    return clean_text(str(value), MAX_VALUE_CHARS)
