"""Knative function ``executor-debug``: attaches the ephemeral containers of an ``action.requested``
event's ``debugger`` and ``customAction`` steps to their pods.

Thin adapter: decode the CloudEvent → execute this executor's steps of both actions (guards,
claim, one ephemeral container per step, named from its step id, verified; audit) → reply with
an ``action.completed`` CloudEvent listing each step's Execution (204 when the event has no such
step); all in amtd.edge.answering.answer_action_requests.

Answers: 200 + CloudEvent when steps were handled (done or skipped), 204 when none are ours,
400 JSON for an event that can never succeed, 403 for an unsigned step, 503 when the API server
is unavailable (retried).
"""

from __future__ import annotations

import os
from functools import partial

import flask
import functions_framework

from amtd.act.registry import ACTIONS
from amtd.edge.answering import answer_action_requests
from amtd.edge.responding import serve
from amtd.edge.workers import start_function

# both attach an ephemeral container (amtd.act.debug); KeyError at start-up if not registered
SERVED = (ACTIONS["debugger"], ACTIONS["customAction"])
EXECUTOR = "executor-debug"

start_function(os.environ, EXECUTOR)


@functions_framework.http
def execute_debug(request: flask.Request) -> flask.Response:
    """Entry point (FUNCTION_TARGET in func.yaml): probes, else one ``action.requested`` event."""
    handle = partial(answer_action_requests, actions=SERVED, executor=EXECUTOR, env=os.environ)
    return serve(request, handle)
