"""Knative function ``executor-delete``: deletes the pods an ``action.requested`` event names.

Thin adapter: decode the CloudEvent → execute this executor's ``delete`` steps (guards, claim,
uid-preconditioned delete, audit) → reply with an ``action.completed`` CloudEvent listing each
step's Execution (204 when the event has no delete step for us); all in
amtd.edge.answering.answer_action_request.

Answers: 200 + CloudEvent when steps were handled (done or skipped), 204 when none are ours,
400 JSON for an event that can never succeed, 503 when the API server is unavailable (retried).
"""

from __future__ import annotations

import os
from functools import partial

import flask
import functions_framework

from amtd.act.registry import ACTIONS
from amtd.edge.answering import answer_action_request
from amtd.edge.responding import serve
from amtd.edge.workers import start_function

ACTION = ACTIONS["delete"]  # KeyError at start-up if it is not registered
EXECUTOR = "executor-delete"

start_function(os.environ, EXECUTOR)


@functions_framework.http
def execute_delete(request: flask.Request) -> flask.Response:
    """Entry point (FUNCTION_TARGET in func.yaml): probes, else one ``action.requested`` event."""
    handle = partial(answer_action_request, action=ACTION, executor=EXECUTOR, env=os.environ)
    return serve(request, handle)
