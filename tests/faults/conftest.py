"""Fixtures of the reliability tests: a recording sink (the sweeper's K_SINK) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.receivers import SinkReceiver


@pytest.fixture
def sink() -> Iterator[SinkReceiver]:
    """A fresh recording sink."""
    receiver = SinkReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


COUNTS: list[str] = []  # the suite's count lines, repeated at the end of the run


def report_counts(line: str) -> None:
    """Print a count line now (captured) and in the terminal summary (always shown)."""
    print(line)
    COUNTS.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show the fault suite's counts even when every test passed."""
    if COUNTS:
        terminalreporter.write_sep("-", "fault suite counts")
        for line in COUNTS:
            terminalreporter.write_line(line)
