"""HTTP receivers on loopback: endpoints that record each request and answer from a script.

A :class:`Receiver` stands in for a subscriber, a sink or a reply target; a :class:`SinkReceiver`
is one that keeps the CloudEvents it accepted (the Broker's stand-in as a ``K_SINK``). Both are
the stack's own loopback receiver (amtd_stack.running.receivers), answering from a script.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cloudevents.http import CloudEvent, from_http

from amtd_stack.running.receivers import LoopbackReceiver, Received, Reply


@dataclass(frozen=True)
class Answer(Reply):
    """What a Receiver answers; ``stall`` holds the answer until the receiver stops, ``drop``
    closes the connection without answering."""

    status: int = 204
    stall: bool = False
    drop: bool = False


Script = Callable[[Received, int], Answer]


def answers(*sequence: Answer) -> Script:
    """A script answering from ``sequence`` in order, repeating the last answer."""
    return lambda received, number: sequence[min(number, len(sequence)) - 1]


class Receiver(LoopbackReceiver):
    """A loopback HTTP endpoint answering from a script and recording every request; serving
    from the start."""

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.requests: list[Received] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self.start()

    def accept(self, received: Received) -> Reply | None:
        """Record the request, then answer as the script says (None: no answer)."""
        with self._lock:
            self.requests.append(received)
            number = len(self.requests)
        answer = self.script(received, number)
        if answer.stall:
            self.released.wait(20)
        return None if answer.stall or answer.drop else answer

    def stop(self) -> None:
        """Release stalled requests and stop serving."""
        self.released.set()
        super().stop()


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

    def _accept(self, received: Received, number: int) -> Answer:
        with self._events_lock:
            if self.status < 300:
                self.events.append(from_http(received.headers, received.body))
            return Answer(self.status)


@contextlib.contextmanager
def run_sink() -> Iterator[SinkReceiver]:
    """A fresh :class:`SinkReceiver`, stopped when the block ends."""
    receiver = SinkReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()
