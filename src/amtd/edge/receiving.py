"""Receiving: the HTTP edge the ingest functions share — limits, authentication and answers.

Order of checks: method (405), size (413), authentication (503 not configured / 401), envelope
(400), content type (415), then fields (400 naming the field). Answers follow the sender: a plain
JSON request (Falco, Falcosidekick webhook, Fluent Bit) gets ``201``/``200`` with a JSON body; a
CloudEvent (maybe through a Broker, where any non-CloudEvent body on a 2xx is a failure: the MT
broker makes it a 502) gets ``202``/``204`` with no body and the outcome in ``X-Amtd-*`` headers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import flask

from amtd.edge.metrics import count_alert, count_refused, set_ingest_source
from amtd.edge.responding import (
    HEALTH_PATHS,
    RESULT_HEADER,
    BadRequestError,
    Handler,
    answer_cluster_health,
    api_error_response,
    error_response,
    read_body,
    serve,
)
from amtd.edge.tracing import (
    current_trace_annotations,
    function_name,
    note_http_status,
    note_span,
    read_request_parent,
    trace_span,
)
from amtd.edge.workers import start_function
from amtd.ingest.alerts import Alert, Ignored, IngestOutcome
from amtd.ingest.authenticating import (
    MODE_ENV,
    PATH_TOKEN_PREFIX,
    TOKEN_ENV,
    TOKEN_EXTENSION,
    AuthSettings,
    choose_presented_token,
    is_path_token_valid,
    is_token_valid,
    read_path_token,
)
from amtd.ingest.documents import TooManyDocumentsError, UnsupportedMediaError, read_media_type
from amtd.ingest.envelopes import Envelope, Payload, is_cloudevent, read_envelope
from amtd.ingest.fields import InvalidFieldError
from amtd.ingest.ingesting import AlertRecorder
from amtd.kube.apierrors import ApiError, TransientError

logger = logging.getLogger(__name__)

ACCEPTED_METHODS = ("POST", "PUT")
MAX_DETAIL_LENGTH = 500
NAME_HEADER = "X-Amtd-Name"
REASON_HEADER = "X-Amtd-Reason"
RESULTS = ("created", "duplicate", "ignored", "rejected", "failed")
OPEN_WARNING = f"ingest authentication is DISABLED ({MODE_ENV}=disabled): anyone who can reach "
OPEN_WARNING += "this endpoint can create SecurityEvents"
PATH_TOKEN_KEY = "amtd.path_token"  # where a /t/<token> path's token waits, out of the path
REDACTED_PATH = PATH_TOKEN_PREFIX + "-"
PATH_VARIABLES = ("PATH_INFO", "RAW_URI", "REQUEST_URI")


@dataclass(frozen=True)
class Delivery:
    """An authenticated request: its payload, its CloudEvent envelope if any, when it arrived."""

    payload: Payload
    envelope: Envelope | None
    received_at: float

    @property
    def is_cloudevent(self) -> bool:
        """Whether to answer the broker way (no body)."""
        return self.envelope is not None


def start_ingest(ingested_by: str, env: Mapping[str, str]) -> AlertRecorder:
    """An ingest function's start: logs and read deadlines, its recorder, the auth warning."""
    start_function(env, ingested_by)
    set_ingest_source(ingested_by)
    recorder = AlertRecorder.from_env(ingested_by, env, annotate=current_trace_annotations)
    warn_if_open(env)
    return recorder


def warn_if_open(env: Mapping[str, str]) -> None:
    """At start: say loudly when auth is off, and when it is not configured at all."""
    settings = AuthSettings.from_env(env)
    if settings.disabled:
        logger.warning(OPEN_WARNING)
    elif not settings.token:
        logger.error("%s is not set: every ingest request is refused until it is", TOKEN_ENV)


def answer_ingest_health(request: flask.Request, env: Mapping[str, str]) -> flask.Response | None:
    """Probes: not ready while authentication is not configured, or the API is unreachable."""
    is_readiness = request.path == HEALTH_PATHS[1] and request.method == "GET"
    if is_readiness and not AuthSettings.from_env(env).is_configured:
        return error_response(503, "NotConfigured", not_configured_detail())
    return answer_cluster_health(request)


def serve_ingest(request: flask.Request, handle: Handler, env: Mapping[str, str]) -> flask.Response:
    """An ingest function's entry: :func:`answer_ingest_health`, else ``handle`` the request.

    Its refusals are answered by :func:`handle_refusals`; the answer is traced (amtd.edge.tracing).
    """
    take_path_token(request)
    return serve(
        request, handle, lambda probed: answer_ingest_health(probed, env),
        lambda handler: trace_request(request, "amtd.ingest.request",
                                      lambda: handle_refusals(handler)),
    )  # fmt: skip


def trace_request(
    request: flask.Request, name: str, answer: Callable[[], flask.Response]
) -> flask.Response:
    """``answer`` in a server span ``name`` whose parent is the request's ``traceparent``
    header, if valid (the ping-driven functions' entry uses it too)."""
    attributes = {"amtd.source": function_name(), "http.request.method": request.method}
    with trace_span(name, read_request_parent(dict(request.headers)), attributes,
                    kind="SERVER") as span:  # fmt: skip
        response = answer()
        note_http_status(span, response.status_code)
        return response


def take_path_token(request: flask.Request) -> None:
    """Move a ``/t/<token>`` path's token out of the request, so no later log can quote it
    (Flask's own error log names the path)."""
    token = read_path_token(request.path)
    if token is None:
        return
    request.environ[PATH_TOKEN_KEY] = token
    request.path = REDACTED_PATH
    for name in PATH_VARIABLES:
        if name in request.environ:
            request.environ[name] = REDACTED_PATH


def receive(request: flask.Request, env: Mapping[str, str]) -> Delivery:
    """Check method, size and credentials; BadRequestError (4xx/503) when refused."""
    if request.method not in ACCEPTED_METHODS:
        raise BadRequestError("MethodNotAllowed", f"use POST, not {request.method}", 405)
    received_at = time.time()
    body = read_body(request)
    envelope, problem = try_read_envelope(dict(request.headers), body)
    authenticate(request, envelope, AuthSettings.from_env(env))
    if problem is not None:  # only now: an unauthenticated sender learns nothing but 401
        raise problem
    if envelope is not None:
        return Delivery(envelope.payload, envelope, received_at)
    media_type = read_media_type(request.headers.get("Content-Type"))
    return Delivery(Payload(media_type, body), None, received_at)


def try_read_envelope(
    headers: Mapping[str, str], body: bytes
) -> tuple[Envelope | None, InvalidFieldError | None]:
    """The CloudEvent envelope, if the request is one, or why it is malformed (raised later)."""
    if not is_cloudevent(headers):
        return None, None
    try:
        return read_envelope(headers, body), None
    except InvalidFieldError as error:
        return None, error


def authenticate(request: flask.Request, envelope: Envelope | None, settings: AuthSettings) -> None:
    """Refuse unless the bearer token (header, or CloudEvent extension) is the configured one."""
    if settings.disabled:
        logger.warning(OPEN_WARNING)
        return
    if not settings.is_configured:
        raise BadRequestError("NotConfigured", not_configured_detail(), 503)
    if PATH_TOKEN_KEY in request.environ:
        authenticate_path(request, settings)
        return
    extension = envelope.attributes.get(TOKEN_EXTENSION) if envelope else None
    presented = choose_presented_token(request.headers.get("Authorization"), extension)
    if presented is None:
        logger.warning("refused a request without credentials from %s", request.remote_addr)
        raise BadRequestError("Unauthorized", "missing bearer token", 401)
    if not is_token_valid(settings, presented):
        logger.warning("refused a request with a wrong token from %s", request.remote_addr)
        raise BadRequestError("Unauthorized", "invalid bearer token", 401)


def authenticate_path(request: flask.Request, settings: AuthSettings) -> None:
    """Refuse unless the ``/t/<token>`` path token is the configured one (never logged)."""
    if not is_path_token_valid(settings, str(request.environ[PATH_TOKEN_KEY])):
        logger.warning("refused a request with a wrong path token from %s", request.remote_addr)
        raise BadRequestError("Unauthorized", "invalid path token", 401)


def not_configured_detail() -> str:
    """How to fix a missing token."""
    return f"{TOKEN_ENV} is not set (set it, or set {MODE_ENV}=disabled to run without auth)"


def process_item(
    parse: Callable[[], Alert | Ignored], record: Callable[[Alert], IngestOutcome], label: str
) -> IngestOutcome:
    """Parse and record one item (counted, traced); every failure becomes an IngestOutcome."""
    with trace_span("amtd.ingest.alert", attributes={"amtd.source": function_name()}) as span:
        outcome = settle_item(parse, record, label)
        note_span(span, {"amtd.result": outcome.result, "amtd.securityevent": outcome.name,
                         "amtd.reason": outcome.reason})  # fmt: skip
    count_alert(outcome.result)
    return outcome


def settle_item(
    parse: Callable[[], Alert | Ignored], record: Callable[[Alert], IngestOutcome], label: str
) -> IngestOutcome:
    """Parse and record one item; every failure becomes an IngestOutcome, never an exception."""
    try:
        parsed = parse()
    except InvalidFieldError as error:
        logger.info("rejected %s: %s", label, error)
        return IngestOutcome("rejected", field=error.field, detail=error.problem, label=label)
    if isinstance(parsed, Ignored):
        logger.info("ignored %s: %s", label, parsed.reason)
        return IngestOutcome("ignored", reason=parsed.reason, label=label)
    try:
        return replace(record(parsed), label=label)
    except ApiError as error:
        reason = "ApiUnavailable" if isinstance(error, TransientError) else "ApiRejected"
        logger.error("could not record %s (%s): %s", label, parsed.target, error)
        return IngestOutcome(
            "failed", reason=reason, detail=error.message[:MAX_DETAIL_LENGTH], label=label
        )


def answer_outcome(outcome: IngestOutcome, delivery: Delivery) -> flask.Response:
    """The answer to a request that carried one alert."""
    if outcome.result == "rejected":
        return error_response(400, "InvalidField", clip(f"{outcome.field}: {outcome.detail}"))
    if outcome.result == "failed":
        return error_response(failure_status([outcome]), outcome.reason, outcome.detail)
    if delivery.is_cloudevent:
        status = 202 if outcome.result == "created" else 204
        return flask.Response(status=status, headers=outcome_headers(outcome))
    payload = {key: value for key, value in outcome.to_json().items() if key != "label"}
    status = 201 if outcome.result == "created" else 200
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")


def answer_batch(outcomes: Sequence[IngestOutcome], delivery: Delivery) -> flask.Response:
    """Per-item results (207-like); 503 if any item failed for the API, 400 if all were bad."""
    counts = {name: sum(1 for item in outcomes if item.result == name) for name in RESULTS}
    summary = ",".join(f"{name}={count}" for name, count in counts.items())
    status = choose_batch_status(outcomes, counts, delivery.is_cloudevent)
    if status in (202, 204):
        return flask.Response(status=status, headers={RESULT_HEADER: summary})
    body: dict[str, Any] = {"counts": counts, "results": [item.to_json() for item in outcomes]}
    if status >= 400:  # error answers always name the problem, like every other 4xx/5xx
        error = {400: "InvalidItems", 503: "ApiUnavailable"}.get(status, "ApiRejected")
        body = {"error": error, "detail": f"{summary} of {len(outcomes)} items", **body}
    return flask.Response(
        json.dumps(body), status=status, mimetype="application/json",
        headers={RESULT_HEADER: summary},
    )  # fmt: skip


def choose_batch_status(
    outcomes: Sequence[IngestOutcome], counts: Mapping[str, int], is_cloudevent: bool
) -> int:
    """Failed items decide first (retry), then all-rejected (400), then success."""
    if counts["failed"]:
        return failure_status(outcomes)
    if outcomes and counts["rejected"] == len(outcomes):
        return 400
    if is_cloudevent:
        return 202 if counts["created"] else 204
    return 200


def failure_status(outcomes: Sequence[IngestOutcome]) -> int:
    """503 (retry) when the API server was unavailable, 500 when it refused us."""
    transient = any(item.reason == "ApiUnavailable" for item in outcomes if item.result == "failed")
    return 503 if transient else 500


def outcome_headers(outcome: IngestOutcome) -> dict[str, str]:
    """``X-Amtd-Result``/``-Name``/``-Reason`` for body-less answers (ASCII-safe)."""
    headers = {RESULT_HEADER: outcome.result, NAME_HEADER: outcome.name,
               REASON_HEADER: outcome.reason.encode("ascii", "replace").decode()}  # fmt: skip
    return {key: value for key, value in headers.items() if value}


def handle_refusals(handler: Callable[[], flask.Response]) -> flask.Response:
    """Run an ingest handler, turning refusals into their answers (counted)."""
    try:
        return handler()
    except BadRequestError as error:
        response = refuse(error.status, error.error, error.detail)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="amtd-ingest"'
        return response
    except InvalidFieldError as error:
        return refuse(400, "InvalidField", str(error))
    except UnsupportedMediaError as error:
        return refuse(415, "UnsupportedMediaType", str(error))
    except TooManyDocumentsError as error:
        return refuse(413, "PayloadTooLarge", str(error))
    except ApiError as error:
        count_refused(type(error).__name__)  # TransientError, InvalidError, ...: our classes
        return api_error_response(error)


def refuse(status: int, error: str, detail: str) -> flask.Response:
    """The answer to a refused request, counted by its error name."""
    count_refused(error)
    return error_response(status, error, clip(detail))


def clip(text: str) -> str:
    """Details may quote hostile input: keep them short."""
    return text if len(text) <= MAX_DETAIL_LENGTH else text[:MAX_DETAIL_LENGTH] + "…"
