"""The reliability tests' count lines (the recording ``sink`` fixture is tests/conftest.py's)."""

from __future__ import annotations

from typing import Any

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
