"""Running small threaded WSGI servers on loopback (broker ingress, API stand-in), free ports.

werkzeug's development server answers every request with ``Connection: close``, so each API
call or event costs a TCP handshake and a new server thread. :class:`KeepAliveHandler` keeps
HTTP/1.1 connections open instead, as real API servers and brokers do: the request body is
bounded by its Content-Length (what the app leaves unread is drained, so the next request line
is found), a response without a length is chunked, and anything it cannot frame safely closes
the connection. :class:`KeepAliveServer` closes the connections still open when it stops, so a
stopped server answers nothing more. Every component serves HTTP through :class:`RunningServer`.

Why not a maintained server library: cheroot (and waitress) were measured in its place on this
stack and cost ~50-200 µs more per loopback round trip, which the alert-to-delete chain (~22
round trips) and the matcher's API calls pay in full.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

LOG = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.05  # how fast stop() is noticed
DRAIN_LIMIT_BYTES = 16 << 20  # a larger unread body closes the connection instead
NO_BODY_STATUSES = frozenset({204, 304})
ERROR_BODY = b"internal server error\n"
MAX_LINE_BYTES = 65536  # request line or one header line, as the stdlib allows
MAX_HEADERS = 100
HTTP_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})
Headers = list[tuple[str, str]]


class RequestHeaders:
    """A request's headers in arrival order, looked up by any case (what the handler and
    werkzeug's environ read); no ``email`` parsing, which costs more than the request."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._by_name: dict[str, str] = {}
        for name, value in pairs:
            self._by_name.setdefault(name.lower(), value)

    def items(self) -> list[tuple[str, str]]:
        """(name, value) pairs as received."""
        return list(self._pairs)

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of the header ``name``, else ``default``."""
        return self._by_name.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._by_name.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler, serving any number of requests per HTTP/1.1 connection."""

    protocol_version = "HTTP/1.1"
    server: KeepAliveServer

    def setup(self) -> None:
        """Send small writes at once (no Nagle delay) and register the connection."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        self.server.untrack(self.connection)
        super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        """An idle kept-alive connection timing out is routine: logged at debug level only."""
        if format.startswith("Request timed out"):
            LOG.debug(format, *args)
        else:
            super().log_error(format, *args)

    def handle_one_request(self) -> None:
        """Read a request line and headers, serve the request (the stdlib's loop, leaner)."""
        self.command, self.request_version, self.requestline = "", "", ""  # for error replies
        try:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not line:
                self.close_connection = True
            elif self.read_request(line):
                self.run_wsgi()
                self.wfile.flush()
        except TimeoutError as error:
            self.log_error("Request timed out: %r", error)
            self.close_connection = True

    def read_request(self, line: bytes) -> bool:
        """Parse the request line and headers; False after answering a malformed request."""
        self.close_connection = True
        self.requestline = line.decode("iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(line) > MAX_LINE_BYTES or len(words) != 3 or words[2] not in HTTP_VERSIONS:
            self.send_error(400, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        pairs = self.read_headers()
        if pairs is None:
            self.send_error(431, "Request header fields too large or malformed")
            return False
        self.headers = RequestHeaders(pairs)  # type: ignore[assignment]
        connection = (self.headers.get("Connection") or "").lower()
        keep = "keep-alive" in connection if words[2] == "HTTP/1.0" else "close" not in connection
        self.close_connection = not keep
        return True

    def read_headers(self) -> list[tuple[str, str]] | None:
        """Header lines up to the blank line; None when too many, too long or malformed."""
        pairs: list[tuple[str, str]] = []
        while len(pairs) <= MAX_HEADERS:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n", b""):
                return pairs
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if len(line) > MAX_LINE_BYTES:
                return None
            if text[0] in " \t" and pairs:  # an obsolete folded line continues the last one
                pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if not colon:
                return None
            pairs.append((name.strip(), value.strip()))
        return None

    def run_wsgi(self) -> None:
        """Serve one request; the connection stays open if both ends can go on."""
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        body = bound_body(environ)
        reply = Reply(self, environ["REQUEST_METHOD"] == "HEAD")
        try:
            reply.run(self.server.app, environ)
        except OSError:  # the client went away (or a fault dropped the connection)
            self.close_connection = True
            return
        if body is None or not drain(body):
            self.close_connection = True


def bound_body(environ: dict[str, Any]) -> LimitedStream | None:
    """Limit ``wsgi.input`` to the declared length; None when the body is chunked."""
    if environ.get("wsgi.input_terminated"):
        return None  # chunked: werkzeug de-chunks it; we cannot tell where it ends
    length = environ.get("CONTENT_LENGTH", "")
    body = LimitedStream(environ["wsgi.input"], int(length) if length.isdigit() else 0)
    environ["wsgi.input"] = body
    return body


def drain(body: LimitedStream) -> bool:
    """Read what the app left of the body; False when too much is left to bother."""
    if body.limit - body.tell() > DRAIN_LIMIT_BYTES:
        return False
    body.exhaust()
    return True


class Reply:
    """One response on a kept-alive connection: status line, headers and body, framed."""

    def __init__(self, handler: KeepAliveHandler, is_head: bool) -> None:
        self.handler = handler
        self.is_head = is_head
        self.status = ""
        self.headers: Headers = []
        self.sent = False
        self.chunked = False

    def run(self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> None:
        """Call the app and write its answer; a failing app gets a 500 if nothing was sent."""
        try:
            chunks = app(environ, self.start_response)
            try:
                for chunk in chunks:
                    self.write(chunk)
                self.finish()
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except OSError:
            raise
        except Exception:
            LOG.exception("error on %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            self.fail()

    def start_response(
        self, status: str, headers: Headers, exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """WSGI start_response: remember status and headers until the first write."""
        if exc_info and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        """Send the head with the first data, then the data (as chunks when unframed)."""
        if not self.sent:
            self.send_head(data)
        elif data and self.chunked:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        elif data:
            self.handler.wfile.write(data)

    def finish(self) -> None:
        """End the body (the head alone when the app wrote nothing)."""
        if not self.sent:
            self.send_head(b"")
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")

    def send_head(self, data: bytes) -> None:
        """Status line and headers, and ``data`` in the same write."""
        handler, code = self.handler, int(self.status.split(None, 1)[0])
        self.choose_framing(code)
        handler.log_request(code)
        head = f"{handler.protocol_version} {self.status}\r\nDate: {handler.date_time_string()}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in self.headers) + "\r\n"
        self.sent = True
        framed = b"%x\r\n%s\r\n" % (len(data), data) if self.chunked and data else data
        handler.wfile.write(head.encode("latin-1") + framed)

    def choose_framing(self, code: int) -> None:
        """Chunk a body of unknown length (HTTP/1.0: end it by closing); say when closing."""
        handler = self.handler
        names = {name.lower() for name, _ in self.headers}
        has_body = not (self.is_head or code < 200 or code in NO_BODY_STATUSES)
        if has_body and "content-length" not in names:
            if handler.request_version == "HTTP/1.1":
                self.chunked = True
                self.headers.append(("Transfer-Encoding", "chunked"))
            else:
                handler.close_connection = True
        if handler.close_connection:
            self.headers.append(("Connection", "close"))

    def fail(self) -> None:
        """Answer 500 when nothing was sent yet; either way the connection is closed."""
        self.handler.close_connection = True
        if not self.sent:
            self.status = "500 INTERNAL SERVER ERROR"
            self.headers = [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(ERROR_BODY))),
            ]
            self.chunked = False
            self.send_head(ERROR_BODY)


class KeepAliveServer(ThreadedWSGIServer):
    """A threaded werkzeug server with kept-alive connections, all closed when it closes."""

    def __init__(
        self, host: str, port: int, app: Any, handler: type[KeepAliveHandler] = KeepAliveHandler
    ) -> None:
        super().__init__(host, port, app, handler=handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection its handler is done with."""
        with self._connections_lock:
            self._connections.discard(connection)

    def server_close(self) -> None:
        """Stop listening and cut every open connection (idle ones would go on serving)."""
        super().server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue  # closed by its handler meanwhile


class QuietHandler(KeepAliveHandler):
    """Kept-alive connections without the access log (the API stand-in keeps its own request
    log); connections already gone (clients, or injected drops) end quietly."""

    timeout = 60  # a client that stalls (or keeps a connection idle) cannot pin a thread

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silence the access log."""

    def finish(self) -> None:
        """Flush, ignoring connections that are already gone."""
        with contextlib.suppress(OSError):
            super().finish()


class RunningServer:
    """A :class:`KeepAliveServer` bound on construction, serving in a background thread from
    ``start()`` until ``stop()``."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        handler: type[KeepAliveHandler] = KeepAliveHandler,
    ) -> None:
        self._server = KeepAliveServer(host, port, app, handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name=f"wsgi-{self.port}",
            daemon=True,
        )

    def start(self) -> RunningServer:
        """Serve in the background; the socket accepts connections already (bound and listening)."""
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://{self._server.host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting, wait for the serving loop, close the socket and the connections."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()


_PICKED: set[int] = set()  # never hand out the same port twice in one process
_PICKED_LOCK = threading.Lock()


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free now (bind to 0), not handed out before; bind it soon after."""
    with _PICKED_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
                port = int(probe.getsockname()[1])
            if port not in _PICKED:
                _PICKED.add(port)
                return port


def is_port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
