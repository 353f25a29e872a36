"""Waiting with a deadline: how tests and benchmarks wait for something (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], what: str, deadline_s: float = 20.0, interval_s: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy; AssertionError naming ``what`` after."""
    deadline = time.monotonic() + deadline_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(interval_s)
    return value


def wait_until(predicate: Callable[[], object], deadline_s: float = 15.0) -> bool:
    """Whether ``predicate`` holds before the deadline (for ``assert wait_until(...)``)."""
    try:
        return bool(wait_for(predicate, str(predicate), deadline_s, interval_s=0.02))
    except AssertionError:
        return False
