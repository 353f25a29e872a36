"""A recording sink on loopback: the sweeper's K_SINK in tests (the Broker's stand-in)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudevents.http import CloudEvent, from_http


class SinkReceiver:
    """A loopback HTTP sink: records every CloudEvent, answers ``status`` (202 by default)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.status = 202
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Where to send events."""
        return f"http://127.0.0.1:{self._server.server_port}/amtd-system/default"

    def received(self) -> list[CloudEvent]:
        """A copy of the events so far."""
        with self._lock:
            return list(self.events)

    def _record(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            if self.status < 300:
                self.events.append(from_http(headers, body))
            return self.status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = sink._record(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        return Handler

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
