"""Responding: the HTTP edge every function shares (decode a CloudEvent, answer the broker).

Status codes follow what a Knative Broker does with them (docs/events.md): 2xx done, 5xx and
404/408/409/429 retried, any other 4xx final (the event goes to the dead-letter sink). A Kubernetes
404/409 is never passed through: the broker would retry it. :func:`serve` is every function's entry:
scrapes (``GET /metrics``) and probes first, then the handler, its refusals and API failures
answered.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flask
from cloudevents.conversion import to_binary
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from werkzeug.exceptions import ClientDisconnected

from amtd.edge.inflating import (
    IDENTITY,
    InflatedTooLargeError,
    InvalidEncodingError,
    UnknownEncodingError,
    inflate,
    read_encoding,
)
from amtd.edge.metrics import answer_metrics, is_metrics_request, observe_request
from amtd.kube.api import is_configurable
from amtd.kube.apierrors import ApiError, InvalidError, TransientError
from amtd.kube.names import InvalidNameError
from amtd.model.texts import UNENCODABLE, find_unencodable

HEALTH_PATHS = ("/health/liveness", "/health/readiness")
MAX_BODY_BYTES = 1 << 20  # CloudEvents asks for 64 KiB; alerts with long outputs get headroom
READ_CHUNK_BYTES = 64 << 10
COMPRESSED_SLACK_BYTES = 64 << 10  # incompressible data grows a little when compressed
RESULT_HEADER = "X-Amtd-Result"  # what a request did, when the answer has no body to say it

Handler = Callable[[flask.Request], flask.Response]
Probe = Callable[[flask.Request], flask.Response | None]
Guard = Callable[[Callable[[], flask.Response]], flask.Response]


class BadRequestError(Exception):
    """Input that can never succeed: answered 4xx, not retried."""

    def __init__(self, error: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail
        self.status = status


def error_response(status: int, error: str, detail: str) -> flask.Response:
    """A JSON error body ``{"error": ..., "detail": ...}``."""
    body = json.dumps({"error": error, "detail": detail})
    return flask.Response(body, status=status, mimetype="application/json")


def json_response(payload: Mapping[str, Any], status: int = 200) -> flask.Response:
    """A plain JSON answer (ingest endpoints, which are not behind a broker)."""
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")


def no_content() -> flask.Response:
    """Handled, nothing to emit."""
    return flask.Response(status=204)


def read_body(request: flask.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, at most ``limit`` bytes once inflated (413 beyond, announced or not).

    ``Content-Encoding: gzip``/``deflate`` is decoded as it arrives (other codings: 415); a body
    that does not arrive within the read deadline (:mod:`amtd.edge.workers`) is a 408."""
    try:
        encoding = read_encoding(request.headers.get("Content-Encoding"))
        if encoding == IDENTITY:
            return b"".join(read_chunks(request, limit))
        return inflate(read_chunks(request, limit + COMPRESSED_SLACK_BYTES), encoding, limit)
    except UnknownEncodingError as error:
        raise BadRequestError("UnsupportedEncoding", str(error), 415) from None
    except InvalidEncodingError as error:
        raise BadRequestError("InvalidEncoding", str(error)) from None
    except InflatedTooLargeError:
        raise BadRequestError("PayloadTooLarge", f"the body exceeds {limit} bytes", 413) from None
    except (ClientDisconnected, TimeoutError) as error:
        if not is_read_timeout(error):
            raise
        detail = "the body was not received in time"
        raise BadRequestError("RequestTimeout", detail, 408) from None


def read_chunks(request: flask.Request, limit: int) -> Iterator[bytes]:
    """The body as it arrives, 413 as soon as it exceeds ``limit`` bytes on the wire."""
    if (request.content_length or 0) > limit:
        raise BadRequestError("PayloadTooLarge", f"the body exceeds {limit} bytes", 413)
    received = 0
    while chunk := request.stream.read(READ_CHUNK_BYTES):
        received += len(chunk)
        if received > limit:
            raise BadRequestError("PayloadTooLarge", f"the body exceeds {limit} bytes", 413)
        yield chunk


def is_read_timeout(error: BaseException | None) -> bool:
    """Whether a failed body read was a timeout (werkzeug reports it as a disconnection)."""
    while error is not None:
        if isinstance(error, TimeoutError):
            return True
        error = error.__cause__ or error.__context__
    return False


def decode_cloudevent(request: flask.Request) -> CloudEvent:
    """Read a binary- or structured-mode CloudEvent; BadRequestError when it is not one, or when
    a string in it cannot be encoded (``400 InvalidUnicode``, before anything acts on it)."""
    try:
        event: CloudEvent = from_http(dict(request.headers), read_body(request))
    except (GenericException, ValueError) as error:  # ValueError: a body that is not UTF-8
        raise BadRequestError("NotACloudEvent", str(error) or type(error).__name__) from None
    where = find_unencodable({**event.get_attributes(), "data": read_json_data(event)})
    if where is not None:
        raise BadRequestError("InvalidUnicode", f"{where}: {UNENCODABLE}")
    return event


def read_json_data(event: CloudEvent) -> Any:
    """The data as decoded JSON when it is JSON text (a reader may decode it later), else as is."""
    data = event.get_data()
    if not isinstance(data, bytes | str):
        return data
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None  # not JSON: the reader that expects JSON refuses it


def cloudevent_response(attributes: Mapping[str, str], data: Any) -> flask.Response:
    """A binary-mode CloudEvent reply, which the broker publishes."""
    headers, body = to_binary(CloudEvent(dict(attributes), data))
    return flask.Response(body, status=200, headers=dict(headers))


def api_error_response(error: ApiError) -> flask.Response:
    """Map a Kubernetes API failure: transient → 503 (retried), anything else → 500.

    NotFound/Conflict must be handled by the caller before this point (they mean "already done"
    or "already there"); reaching here with one is a bug, answered 500 so it is retried and seen.
    """
    if isinstance(error, TransientError):
        return error_response(503, "ApiUnavailable", error.message)
    if isinstance(error, InvalidError):
        return error_response(500, "ApiRejected", error.message)
    return error_response(500, "ApiError", str(error))


def answer_health(request: flask.Request, is_ready: Callable[[], bool]) -> flask.Response | None:
    """Answer func's liveness/readiness probes; None for any other request."""
    if request.method != "GET" or request.path not in HEALTH_PATHS:
        return None
    if request.path.endswith("readiness") and not is_ready():
        return error_response(503, "NotReady", "the Kubernetes client cannot be configured")
    return flask.Response("OK", status=200, mimetype="text/plain")


def handle_errors(handler: Callable[[], flask.Response]) -> flask.Response:
    """Run a handler, turning the shared exceptions into the right answers."""
    try:
        return handler()
    except BadRequestError as error:
        return error_response(error.status, error.error, error.detail)
    except InvalidNameError as error:  # a name from the input, refused before any API call
        return error_response(400, "InvalidName", str(error))
    except ApiError as error:
        return api_error_response(error)


def answer_cluster_health(request: flask.Request) -> flask.Response | None:
    """The probes of a function that needs only the Kubernetes client; None for other requests."""
    return answer_health(request, is_configurable)


def serve(
    request: flask.Request, handle: Handler, probe: Probe = answer_cluster_health,
    guard: Guard = handle_errors,
) -> flask.Response:  # fmt: skip
    """A function's entry: answer its probes and scrapes (``GET /metrics``), else ``handle`` the
    request under ``guard`` (timed, amtd.edge.metrics)."""
    started = time.perf_counter()
    try:
        if is_metrics_request(request):
            return answer_metrics()
        health = probe(request)
        if health is not None:
            return health
        response = guard(lambda: handle(request))
        observe_request(response.status_code, started)
        return response
    finally:
        stop_reading(request)


def stop_reading(request: flask.Request) -> None:
    """Leave what a function did not read of a body unread.

    functions-framework reads the whole rest of every body after the answer, without a limit or
    a way out of a timed-out read: a refused body would be read to its end (into memory) anyway.
    gunicorn drains a little of what is left afterwards, or closes the connection."""
    request.stream = io.BytesIO()
