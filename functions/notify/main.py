"""notify: tells people what amtd did, one message per ``action.completed`` event or dead letter.

Subscribed by the Triggers ``notify-completed`` and ``notify-dead-letters`` (the dead-letters
function's notice that it recorded one, amtd.notify.deadletternotices); posts to Slack,
Microsoft Teams (Workflows, Adaptive Card) or a generic JSON webhook, as the Secret
``amtd-notify`` says (docs/notify.md). Each execution is confirmed by its SecurityEvent first
(amtd.notify.notifications), each dead letter by its Event. 204 when posted (or notifications
are off), 503 when the receiver is unavailable or the settings are bad (the Broker retries,
then dead-letters), 422 when the receiver refused it, 400 for a bad event.
At least once: a retried event is posted again; its id is the de-duplication key.
"""

from __future__ import annotations

import logging
import os

import flask
import functions_framework

from amtd.edge.notifying import answer_notification, keep_url_out_of_logs
from amtd.edge.responding import serve
from amtd.edge.workers import start_function
from amtd.notify.settings import NotifySettings, SettingsError, read_settings

start_function(os.environ, "notify")
keep_url_out_of_logs()
logger = logging.getLogger("amtd.notify")


def load_settings() -> NotifySettings | SettingsError:
    """The settings, read once; a bad one is logged now and answered to every event."""
    try:
        settings = read_settings(os.environ)
    except SettingsError as error:
        logger.error("notify is NOT configured: %s", error)
        return error
    logger.info("notify: %s", settings.kind or "off (NOTIFY_KIND empty or none)")
    return settings


SETTINGS = load_settings()
NAMESPACE = os.environ.get("AMTD_NAMESPACE", "amtd-system")  # where dead-letters records its own


@functions_framework.http
def notify_event(request: flask.Request) -> flask.Response:
    """Answer health probes, else notify one ``action.completed`` event or dead letter."""
    return serve(request, lambda request: answer_notification(request, SETTINGS, NAMESPACE))
