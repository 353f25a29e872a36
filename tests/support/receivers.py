"""HTTP receivers on loopback: endpoints that record each request and answer from a script.

A :class:`Receiver` stands in for a subscriber, a sink or a reply target; a :class:`SinkReceiver`
is one that keeps the CloudEvents it accepted (the Broker's stand-in as a ``K_SINK``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cloudevents.http import CloudEvent, from_http


@dataclass
class Recorded:
    """One request a Receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What a Receiver answers; ``stall`` holds the answer until the receiver stops, ``drop``
    closes the connection without answering."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: bool = False
    drop: bool = False


Script = Callable[[Recorded, int], Answer]


def answers(*sequence: Answer) -> Script:
    """A script answering from ``sequence`` in order, repeating the last answer."""
    return lambda recorded, number: sequence[min(number, len(sequence)) - 1]


class Receiver:
    """A loopback HTTP endpoint answering from a script and recording every request."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Recorded] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL of the receiver."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def _record(self, recorded: Recorded) -> Answer:
        with self._lock:
            self.requests.append(recorded)
            number = len(self.requests)
        return self.script(recorded, number)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                answer = receiver._record(recorded)
                if answer.stall:
                    receiver.released.wait(20)
                    return
                if answer.drop:
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        return Handler

    def stop(self) -> None:
        """Release stalled requests and stop serving."""
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class SinkReceiver(Receiver):
    """A recording sink: keeps every CloudEvent it accepts, answers ``status`` (202 by default)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.status = 202
        self._events_lock = threading.Lock()
        super().__init__(self._accept)

    @property
    def url(self) -> str:
        """Where to send events (the path of broker ``amtd-system/default``)."""
        return f"{super().url}/amtd-system/default"

    def received(self) -> list[CloudEvent]:
        """A copy of the events accepted so far."""
        with self._events_lock:
            return list(self.events)

    def _accept(self, recorded: Recorded, number: int) -> Answer:
        with self._events_lock:
            if self.status < 300:
                self.events.append(from_http(recorded.headers, recorded.body))
            return Answer(self.status)


@contextlib.contextmanager
def run_sink() -> Iterator[SinkReceiver]:
    """A fresh :class:`SinkReceiver`, stopped when the block ends."""
    receiver = SinkReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()
