"""Knative function ``executor-delete``: deletes the pods an ``action.requested`` event names.

Thin adapter: decode the CloudEvent → execute this executor's ``delete`` steps (guards, claim,
uid-preconditioned delete, audit: src/amtd/executing.py) → reply with an ``action.completed``
CloudEvent listing each step's Execution (204 when the event has no delete step for us).

Answers: 200 + CloudEvent when steps were handled (done or skipped), 204 when none are ours,
400 JSON for an event that can never succeed, 503 when the API server is unavailable (retried).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import flask
import functions_framework

from amtd import auditing, executing, kubeapi, responding
from amtd.actionevents import ActionCompletion, to_completion_attributes
from amtd.guarding import read_protected_namespaces

ACTION = "delete"
EXECUTOR = "executor-delete"

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
LOG = logging.getLogger(EXECUTOR)


@functions_framework.http
def execute_delete(request: flask.Request) -> flask.Response:
    """Entry point (FUNCTION_TARGET in func.yaml)."""
    health = responding.answer_health(request, kubeapi.is_configurable)
    if health is not None:
        return health
    return responding.handle_errors(lambda: handle(request))


def handle(request: flask.Request) -> flask.Response:
    """Decode, execute, reply."""
    event = responding.decode_cloudevent(request)
    action_request = executing.read_request(event)
    if not action_request.steps_for(ACTION):
        LOG.info("event %s has no %s step: nothing to do", event["id"], ACTION)
        return responding.no_content()
    settings = executing.Settings(ACTION, EXECUTOR, read_protected_namespaces(os.environ))
    now = auditing.format_time(datetime.now(UTC))
    cluster = kubeapi.shared_cluster()
    executions = executing.execute_request(cluster, action_request, settings, now)
    completion = ActionCompletion(
        security_event=action_request.security_event, executions=executions
    )
    attributes = to_completion_attributes(event["id"], ACTION, completion.security_event.name)
    return responding.cloudevent_response(
        attributes, completion.model_dump(by_alias=True, exclude_none=True, mode="json")
    )
