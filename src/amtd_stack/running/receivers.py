"""Loopback receivers: stand-ins for the endpoints functions post to, run by the stack tooling.

The demo's chat webhook (what notify posts to) and its OTLP trace collector, and the tests'
scripted subscribers and sinks, are one shape: an HTTP server on a free 127.0.0.1 port, serving
from a thread, each POST answered by the subclass's :meth:`LoopbackReceiver.accept`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


@dataclass(frozen=True)
class Reply:
    """What a receiver answers to one POST."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Received:
    """One POST a receiver got (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackReceiver(ThreadingHTTPServer):
    """An HTTP server on loopback, serving in a thread from :meth:`start` (or ``with``) to
    :meth:`stop`; subclasses say what each POST gets by :meth:`accept`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceivingHandler)
        self.daemon_threads = True
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of the receiver."""
        return f"http://127.0.0.1:{self.server_port}"

    def accept(self, received: Received) -> Reply | None:
        """The answer to one POST; None closes the connection without answering."""
        raise NotImplementedError

    def start(self) -> Self:
        """Serve from a thread of its own."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(10)
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *args: object) -> None:
        self.stop()


class ReceivingHandler(BaseHTTPRequestHandler):
    """Hand each POST to the receiver and write back its :class:`Reply`."""

    server: LoopbackReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.accept(Received(self.path, headers, body))
        if reply is None:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, *args: object) -> None:  # the demo narrates, tests stay quiet
        pass
