"""Waiting with a deadline: how tests and benchmarks wait for something (never a fixed sleep).

And calls started at the same moment (``run_together``), for races.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

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


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start the calls at the same moment on their own threads; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return results
