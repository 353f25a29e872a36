"""Answering: the HTTP side of an executor function (decode → execute → reply).

The execution itself is :mod:`amtd.act.executing`; this module only turns a CloudEvent into an
:class:`~amtd.model.actionevents.ActionRequest` (400 for one that can never succeed) and the
Executions back into an ``action.completed`` CloudEvent. The steps' Events are written after the
reply, by the process's deferrer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import flask
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from amtd.act.actions import ExecutableAction
from amtd.act.executing import execute_request, make_settings
from amtd.act.verifying import UnverifiedStepError, verify_steps
from amtd.edge.metrics import count_executions
from amtd.edge.responding import BadRequestError, cloudevent_response, decode_cloudevent, no_content
from amtd.edge.tracing import (
    SpanLike,
    current_trace_extensions,
    note_span,
    read_parent,
    trace_span,
)
from amtd.kube.api import SECURITY_EVENTS, shared_cluster
from amtd.kube.deferring import shared_deferrer
from amtd.kube.names import InvalidNameError
from amtd.model.actionevents import (
    ACTION_REQUESTED,
    ActionCompletion,
    ActionRequest,
    ActionStep,
    from_request_data,
    to_completion_attributes,
)
from amtd.model.actions import Action
from amtd.model.targets import parse_target
from amtd.model.timestamps import format_now

LOG = logging.getLogger(__name__)


def answer_action_request(
    request: flask.Request, action: ExecutableAction, executor: str, env: Mapping[str, str]
) -> flask.Response:
    """Decode the event → execute its ``action`` steps as ``executor`` → reply ``action.completed``.

    204 when the event has no step for this executor; 400 (BadRequestError) for one that can
    never succeed; 403 for a step the matcher did not sign as it is.
    """
    return answer_action_requests(request, [action], executor, env)


def answer_action_requests(
    request: flask.Request, actions: Sequence[ExecutableAction], executor: str,
    env: Mapping[str, str],
) -> flask.Response:  # fmt: skip
    """:func:`answer_action_request` for an executor of several actions (executor-debug).

    Every step of every one of them is verified before any is executed, so a request is refused
    (403) or carried out as a whole. One reply lists all their Executions; its ``action`` names
    the actions that had steps, comma-separated (``debugger``, or ``debugger,customAction``).
    """
    event = decode_cloudevent(request)
    parent = read_parent(event.get_attributes())  # the matcher's span, when the event names it
    with trace_span("amtd.execute", parent, {"amtd.executor": executor}, "SERVER") as span:
        return execute_and_reply(event, actions, executor, env, span)


def execute_and_reply(
    event: CloudEvent, actions: Sequence[ExecutableAction], executor: str,
    env: Mapping[str, str], span: SpanLike,
) -> flask.Response:  # fmt: skip
    """The body of :func:`answer_action_requests` once the event is decoded (traced)."""
    action_request = read_request(event)
    ours = [action for action in actions if action_request.steps_for(action.name)]
    steps = [step for action in ours for step in action_request.steps_for(action.name)]
    names = [action.name for action in ours]
    note_span(span, {"amtd.securityevent": action_request.security_event.name,
                     "amtd.actions": names, "amtd.steps": len(steps)})  # fmt: skip
    if not ours:
        LOG.info("event %s has no %s step: nothing to do", event["id"],
                 " or ".join(action.name for action in actions))  # fmt: skip
        return no_content()
    every = [make_settings(action, executor, env, shared_deferrer().defer) for action in ours]
    ref, cluster, now = action_request.security_event, shared_cluster(), format_now()
    try:
        for settings in every:  # all before anything is read: unsigned work is not ours
            verify_steps(settings.verifier, ref, action_request.steps_for(settings.action.name))
        executions = [
            execution
            for settings in every
            for execution in execute_request(cluster, action_request, settings, now)
        ]
    except UnverifiedStepError as error:  # not the matcher's: refused, nothing read or written
        raise BadRequestError(error.reason, error.detail, 403) from None
    count_executions(executions, now)
    note_span(span, {"amtd.results": [execution.result for execution in executions],
                     "amtd.reasons": [execution.reason for execution in executions]})  # fmt: skip
    completion = ActionCompletion(security_event=ref, executions=executions)
    return reply_completion(event["id"], ",".join(action.name for action in ours), completion)


def reply_completion(event_id: str, action: str, completion: ActionCompletion) -> flask.Response:
    """The ``action.completed`` CloudEvent answering request ``event_id``."""
    attributes = to_completion_attributes(event_id, action, completion.security_event.name)
    attributes.update(current_trace_extensions())  # the executor's span, for notify and beyond
    data = completion.model_dump(by_alias=True, exclude_none=True, mode="json")
    return cloudevent_response(attributes, data)


def read_request(event: CloudEvent) -> ActionRequest:
    """The ActionRequest of an event; BadRequestError (400) for anything that can never work."""
    if event["type"] != ACTION_REQUESTED:
        raise BadRequestError(
            "UnexpectedEventType", f"expected {ACTION_REQUESTED}, got {event['type']}"
        )
    data = event.get_data()
    if not isinstance(data, dict):
        raise BadRequestError("InvalidActionRequest", "data must be a JSON object")
    try:
        request = from_request_data(data)
    except ValidationError as error:
        raise BadRequestError("InvalidActionRequest", summarize_errors(error)) from None
    try:  # checked before any API call: the name goes into paths (amtd.kube.names)
        SECURITY_EVENTS.names.check("securityEvent.name", request.security_event.name)
    except InvalidNameError as error:
        raise BadRequestError("InvalidActionRequest", str(error)) from None
    for step in request.steps:
        check_step(step)
    return request


def summarize_errors(error: ValidationError) -> str:
    """pydantic errors as ``field.path: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
    )


def check_step(step: ActionStep) -> None:
    """A step's target and parameters must be valid, else the event can never succeed."""
    try:
        parse_target(step.target)
        Action.model_validate({step.action: step.parameters})
    except ValidationError as error:
        detail = summarize_errors(error)
        raise BadRequestError("InvalidActionStep", f"step {step.step_id}: {detail}") from None
    except ValueError as error:
        raise BadRequestError("InvalidActionStep", f"step {step.step_id}: {error}") from None
