"""The tests' OTLP/HTTP trace receiver: the stack's own collector (amtd_stack.running.traces),
plus waiting for spans by name.

:func:`run_trace_receiver` yields a :class:`TraceReceiver` whose ``url`` is an
``OTEL_EXPORTER_OTLP_ENDPOINT``; ``amtd_stack.running.traces.tracing_env(receiver.url)`` is the
environment that turns a function's tracing on towards it (exported quickly: a test waits briefly).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from amtd_stack.running.traces import ReceivedSpan, TraceCollector
from support.waiting import wait_until


class TraceReceiver(TraceCollector):
    """The stack's trace collector, with the waits a test needs."""

    def wait_for_spans(
        self, name: str, count: int = 1, deadline_s: float = 15.0
    ) -> list[ReceivedSpan]:
        """The spans named ``name`` once there are ``count`` of them (fewer after the deadline)."""
        wait_until(lambda: len(self.named(name)) >= count, deadline_s)
        return self.named(name)

    def named(self, name: str) -> list[ReceivedSpan]:
        """The spans named ``name`` received so far."""
        return [span for span in self.spans() if span.name == name]


@contextlib.contextmanager
def run_trace_receiver() -> Iterator[TraceReceiver]:
    """A fresh :class:`TraceReceiver`, stopped when the block ends."""
    with TraceReceiver() as receiver:
        yield receiver
