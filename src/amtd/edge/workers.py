"""Workers: the gunicorn worker that gives every request a read deadline.

``functions-framework --target ...`` serves a function with gunicorn's threaded worker, which
reads a request's head and body in blocking mode with no timeout: a client sending one byte a
second holds a thread for as long as it likes, and a handful of them starve the function (its
liveness probe included). functions-framework takes no gunicorn options from the environment, so
:func:`serve_with_read_deadlines` (called by every ``functions/*/main.py`` through
:func:`start_function`, before the server starts) swaps in an application class that selects
:class:`ReadDeadlineWorker`: the same worker, whose socket reads all end ``AMTD_READ_TIMEOUT_S``
(default 10) after the request's first byte. A late head closes the connection; a late body fails
the body read with :class:`ReadDeadlineError` (a ``TimeoutError``), which the shared edge
answers ``408``.
Under func-python (the deployed ASGI bridge) none of this runs: uvicorn reads every request on its
event loop and hands the function a complete body, so a slow client holds no thread there.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Mapping
from typing import Any

import functions_framework._http.gunicorn as framework_gunicorn
from gunicorn.http.errors import NoMoreData  # type: ignore[import-untyped]
from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
from gunicorn.workers import gthread  # type: ignore[import-untyped]

from amtd.edge.logs import configure_logging
from amtd.edge.metrics import start_metrics
from amtd.edge.tracing import start_tracing

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "AMTD_READ_TIMEOUT_S"
DEFAULT_READ_TIMEOUT_S = 10.0
# How long a thread waits for a new connection's first byte before handing it back to the
# poller (gunicorn waits 5 s): silent connections then cost a file descriptor, not a thread.
FIRST_BYTE_WAIT_S = 0.5
ACCEPT_ERRNOS_IGNORED = (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK)  # as gunicorn's


class ReadDeadlineError(NoMoreData, TimeoutError):  # type: ignore[misc]
    """The request's deadline passed while reading it.

    A ``NoMoreData`` to gunicorn (a late head closes quietly), a ``TimeoutError`` to the rest
    (gunicorn's body drain stops, the edge answers 408)."""

    def __str__(self) -> str:
        return "the request was not received within its read deadline"


class ReadDeadlineUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader, each ``recv`` bounded by what is left of the deadline."""

    deadline = float("inf")

    def chunk(self, size_hint: int | None = None) -> bytes:
        """One ``recv``, or ReadDeadlineError once the deadline has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ReadDeadlineError()
        prior = self.sock.gettimeout()
        self.sock.settimeout(remaining if prior is None else min(prior, remaining))
        try:
            return bytes(super().chunk(size_hint))
        except TimeoutError as error:
            raise ReadDeadlineError() from error
        finally:
            self.sock.settimeout(prior)  # writing the answer is not bounded by the read deadline


def replace_unreader(unreader: Any) -> ReadDeadlineUnreader:
    """The same reader with a deadline, keeping anything already buffered."""
    replacement = ReadDeadlineUnreader(unreader.sock, unreader.mxchunk)
    replacement.buf = unreader.buf
    return replacement


class ReadDeadlineConnection(gthread.TConn):  # type: ignore[misc]
    """A connection whose parser reads through :class:`ReadDeadlineUnreader`."""

    timeout_s = DEFAULT_READ_TIMEOUT_S

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted_at = time.monotonic()  # time queued for a thread counts: a client can wait

    def init(self) -> None:
        """Called by the worker before each request: the first one's deadline counts from the
        accept, a kept-alive connection's next one from now."""
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        started = time.monotonic()
        if type(unreader) is SocketUnreader:  # the first request: nothing parsed yet
            unreader = self.parser.unreader = replace_unreader(unreader)
            started = self.accepted_at
        if isinstance(unreader, ReadDeadlineUnreader):  # not HTTP/2 (functions-framework's is 1.1)
            unreader.deadline = started + self.timeout_s

    def wait_for_data(self, timeout: float) -> bool:
        """Wait briefly for the first byte in a thread; the poller waits the rest."""
        return bool(super().wait_for_data(min(timeout, FIRST_BYTE_WAIT_S)))


class ReadDeadlineWorker(gthread.ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, accepting :class:`ReadDeadlineConnection` connections."""

    def accept(self, listener: Any) -> None:
        """As gunicorn accepts (errors included), with the connection class swapped."""
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in ACCEPT_ERRNOS_IGNORED:
                raise
            return
        self.nr_conns += 1
        client.setblocking(True)
        self.enqueue_req(ReadDeadlineConnection(self.cfg, client, address, listener.getsockname()))


class ReadDeadlineApplication(framework_gunicorn.GunicornApplication):
    """functions-framework's gunicorn application, serving with :class:`ReadDeadlineWorker`."""

    def load_config(self) -> None:
        """functions-framework's options, then the worker (unless one was chosen on purpose)."""
        super().load_config()  # type: ignore[no-untyped-call]
        if self.cfg.worker_class_str in ("sync", "gthread"):
            self.cfg.set("worker_class", ReadDeadlineWorker)
        else:
            logger.warning("gunicorn worker %s has no read deadline", self.cfg.worker_class_str)


def read_timeout_s(env: Mapping[str, str]) -> float:
    """``AMTD_READ_TIMEOUT_S`` in seconds (a positive number), else the default."""
    try:
        value = float(env.get(TIMEOUT_ENV, "") or DEFAULT_READ_TIMEOUT_S)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        logger.error("%s must be a positive number of seconds: using the default", TIMEOUT_ENV)
        return DEFAULT_READ_TIMEOUT_S
    return value


def start_function(env: Mapping[str, str], name: str = "") -> None:
    """What every ``functions/*/main.py`` does first: JSON-lines logs, the metrics' mode, the
    tracing settings (spans named as function ``name``), then read deadlines."""
    configure_logging(env)
    start_metrics(env)  # before gunicorn forks its workers
    start_tracing(name, env)
    serve_with_read_deadlines(env)  # before functions-framework starts gunicorn


def serve_with_read_deadlines(env: Mapping[str, str]) -> None:
    """Make ``functions-framework`` serve with read deadlines (before its server starts)."""
    ReadDeadlineConnection.timeout_s = read_timeout_s(env)
    framework_gunicorn.GunicornApplication = ReadDeadlineApplication  # type: ignore[misc]
