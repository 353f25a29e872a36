"""Notifying: the notify function's edge. Read an event, confirm it with the cluster, post it.

Two events are notified: ``action.completed`` (confirmed by its SecurityEvent's status) and the
dead-letters function's notice that a dead letter was recorded (confirmed by that Event).

Retries are the Broker's, so the answer says whether one can help: the receiver's 2xx is a
``204``; no answer (refused, timed out, cut) or its 5xx, 408 or 429 a ``503``
(``ReceiverUnavailable``, retried, then dead-lettered); any other answer, a redirect included
(never followed: the token must not travel), a final ``422`` (``ReceiverRejected``, logged).
The webhook URL is a secret: no answer and no log line shows it (a receiver's body is logged
cut, with the URL taken out).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import flask
import requests

from amtd.edge.responding import (
    RESULT_HEADER,
    BadRequestError,
    decode_cloudevent,
    error_response,
    read_json_data,
)
from amtd.kube.api import EVENTS, SECURITY_EVENTS
from amtd.kube.connecting import connect_cluster
from amtd.kube.events import CLUSTER_SCOPED_EVENTS_NAMESPACE
from amtd.model.texts import clean_text
from amtd.notify.deadletternotices import (
    NOTICE_TYPE,
    InvalidNoticeError,
    confirm_notice,
    read_notice,
)
from amtd.notify.notifications import (
    MAX_ID_CHARS,
    Completion,
    InvalidCompletionError,
    confirm_completion,
    read_completion,
)
from amtd.notify.payloads import (
    Message,
    make_completion_message,
    make_dead_letter_message,
    render_payload,
)
from amtd.notify.settings import NotifySettings, SettingsError

LOG = logging.getLogger("amtd.notify")
RETRIED_STATUSES = (408, 429)
UNSUPPORTED = "UnsupportedEventType"
MAX_LOGGED_BODY_CHARS = 200


def keep_url_out_of_logs() -> None:
    """urllib3 logs each request's path at DEBUG, and a webhook URL's path is its secret."""
    logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


class ReceiverUnavailableError(Exception):
    """No usable answer from the receiver: worth a retry."""


class ReceiverRejectedError(Exception):
    """The receiver refused the notification: a retry would be refused too."""


def answer_notification(
    request: flask.Request, settings: NotifySettings | SettingsError, namespace: str
) -> flask.Response:
    """Decode → read (400 if unreadable) → settings off: done → confirm → post.

    ``namespace`` is where the dead-letters function records dead letters about the Broker."""
    if isinstance(settings, SettingsError):
        return error_response(503, "NotConfigured", str(settings))
    event = decode_cloudevent(request)
    attributes, data = event.get_attributes(), read_json_data(event)
    event_id = clean_text(str(attributes.get("id", "")), MAX_ID_CHARS)  # logged and sent on
    if attributes.get("type") == NOTICE_TYPE:
        reference = read_dead_letter_notice(data)
        confirm = partial(confirm_dead_letter, event_id, reference, namespace)
    else:
        completion = read_event(attributes, data)
        confirm = partial(confirm_executions, completion, settings.template)
    if settings.kind is None:
        LOG.info("notifications are off (NOTIFY_KIND): event %s not sent", event_id)
        return done("off")
    return post_message(settings, confirm())


def read_event(attributes: Mapping[str, Any], data: Any) -> Completion:
    """The completion the event claims; a 400 naming the problem."""
    try:
        return read_completion(attributes, data)
    except InvalidCompletionError as error:
        detail = (
            f"{error.detail} (or {NOTICE_TYPE})" if error.error == UNSUPPORTED else error.detail
        )
        raise BadRequestError(error.error, detail) from None


def read_dead_letter_notice(data: Any) -> tuple[str, str]:
    """The Event a dead-letter notice names; a 400 naming the problem."""
    try:
        return read_notice(data)
    except InvalidNoticeError as error:
        raise BadRequestError("InvalidNotice", str(error)) from None


def confirm_executions(completion: Completion, template: str) -> Message:
    """What the SecurityEvent confirms; a 400 ``UnconfirmedCompletion`` when nothing is."""
    found = connect_cluster().find(SECURITY_EVENTS, completion.security_event)
    notifications, unconfirmed = confirm_completion(completion, found)
    for line in unconfirmed:
        LOG.warning("event %s: not notified, unconfirmed: %s", completion.event_id, line)
    if not notifications:
        raise BadRequestError("UnconfirmedCompletion", "; ".join(unconfirmed))
    return make_completion_message(completion.event_id, template, notifications)


def confirm_dead_letter(event_id: str, reference: tuple[str, str], namespace: str) -> Message:
    """The dead letter as its Event says; a 400 ``UnconfirmedNotice`` when there is none.

    Only the two namespaces dead-letters records in are read (the only ones notify may read)."""
    if reference[0] not in (namespace, CLUSTER_SCOPED_EVENTS_NAMESPACE):
        shown = clean_text(reference[0], 63)
        raise BadRequestError("UnconfirmedNotice", f"dead letters are not recorded in {shown}")
    found = connect_cluster().find(EVENTS, reference[1], reference[0])
    notice = confirm_notice(event_id, reference, found)
    if isinstance(notice, str):
        LOG.warning("event %s: not notified, unconfirmed: %s", event_id, notice)
        raise BadRequestError("UnconfirmedNotice", notice)
    return make_dead_letter_message(notice)


def post_message(settings: NotifySettings, message: Message) -> flask.Response:
    """Render and post; the receiver's outcome as the Broker should take it."""
    assert settings.kind is not None
    payload = render_payload(settings.kind, message)
    event_id, count = message.event_id, len(message.values)
    try:
        post_payload(settings, payload, event_id)
    except ReceiverUnavailableError as error:
        LOG.error("event %s: %s (the Broker retries)", event_id, error)
        return error_response(503, "ReceiverUnavailable", str(error))
    except ReceiverRejectedError as error:
        LOG.error("event %s: NOT notified, %s (not retried)", event_id, error)
        return error_response(422, "ReceiverRejected", str(error))
    LOG.info("event %s: notified %s (%d lines)", event_id, settings.kind, count)
    return done(f"notified={count}")


def post_payload(settings: NotifySettings, payload: Any, event_id: str) -> None:
    """POST the JSON body; the outcome's exception, whose message never holds the URL."""
    headers = {"Content-Type": "application/json"}
    if settings.kind == "webhook":
        headers["Idempotency-Key"] = event_id
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
    try:
        answer = requests.post(
            settings.url, data=json.dumps(payload), headers=headers,
            timeout=(settings.timeout_s, settings.timeout_s), allow_redirects=False,
        )  # fmt: skip
    except requests.RequestException as error:  # its text names the URL: only the kind is shown
        problem = f"the {settings.kind} receiver: {type(error).__name__}"
        raise ReceiverUnavailableError(problem) from None
    judge_answer(settings, answer.status_code, answer.text)


def judge_answer(settings: NotifySettings, status: int, body: str) -> None:
    """Nothing for a 2xx; else the exception that says whether a retry can help."""
    if 200 <= status < 300:
        return
    LOG.warning("the %s receiver answered %d: %s", settings.kind, status, redact(settings, body))
    problem = f"the {settings.kind} receiver answered HTTP {status}"
    if status >= 500 or status in RETRIED_STATUSES:
        raise ReceiverUnavailableError(problem)
    raise ReceiverRejectedError(problem)


def redact(settings: NotifySettings, text: str) -> str:
    """A receiver's text for the log: cut, cleaned, with the URL, its path and query (the
    secret part of a Slack or Teams URL) and the token taken out."""
    parts = urlsplit(settings.url)
    for secret in (settings.url, parts.path, parts.query, settings.token):
        if len(secret) > 1:  # a path "/" is no secret, and replacing it would garble the text
            text = text.replace(secret, "<redacted>")
    return clean_text(" ".join(text.split()), MAX_LOGGED_BODY_CHARS)


def done(result: str) -> flask.Response:
    """Handled, nothing to publish (a CloudEvent here would go back on the Broker)."""
    return flask.Response(status=204, headers={RESULT_HEADER: result})
