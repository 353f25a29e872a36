"""amtd.kube.deferring: tasks run after the caller moved on, in order; none lost silently.

Real threads, no sleeps: a task blocks on an Event the test sets, and flush() waits with a
deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from amtd.kube.deferring import Deferrer, run_now


@pytest.fixture
def make() -> Iterator[Callable[..., Deferrer]]:
    """A factory of deferrers, all closed (worker ended) at teardown."""
    made: list[Deferrer] = []

    def new(name: str, capacity: int = 1000) -> Deferrer:
        made.append(Deferrer(name=name, capacity=capacity))
        return made[-1]

    yield new
    for deferrer in made:
        deferrer.close(timeout_s=10)


def test_tasks_run_in_order_after_the_caller_returns(make: Callable[..., Deferrer]) -> None:
    deferrer, done, gate = make("test-order"), [], threading.Event()
    deferrer.defer(gate.wait)  # holds the worker until the caller has returned
    for number in range(5):
        deferrer.defer(lambda number=number: done.append(number))
    assert done == []  # the caller was not kept waiting
    gate.set()
    assert deferrer.flush(timeout_s=10)
    assert done == [0, 1, 2, 3, 4]
    assert deferrer.pending == 0


def test_a_full_backlog_runs_the_task_in_the_caller(
    make: Callable[..., Deferrer], caplog: pytest.LogCaptureFixture
) -> None:
    deferrer, gate = make("test-full", capacity=2), threading.Event()
    ran_by: list[str] = []
    deferrer.defer(gate.wait)
    deferrer.defer(lambda: ran_by.append(threading.current_thread().name))
    with caplog.at_level(logging.WARNING, logger="amtd.kube.deferring"):
        deferrer.defer(lambda: ran_by.append(threading.current_thread().name))
    assert ran_by == [threading.current_thread().name]  # done at once, not dropped
    assert "backlog full" in caplog.text
    gate.set()
    assert deferrer.flush(timeout_s=10)
    assert ran_by[1] == "test-full"


def test_a_failing_task_is_logged_and_the_worker_goes_on(
    make: Callable[..., Deferrer], caplog: pytest.LogCaptureFixture
) -> None:
    deferrer, done = make("test-failure"), []

    def fail() -> None:
        raise RuntimeError("API server gone")

    with caplog.at_level(logging.ERROR, logger="amtd.kube.deferring"):
        deferrer.defer(fail)
        deferrer.defer(lambda: done.append("after"))
        assert deferrer.flush(timeout_s=10)
    assert done == ["after"]
    assert "API server gone" in caplog.text


def test_flush_reports_what_it_could_not_finish(
    make: Callable[..., Deferrer], caplog: pytest.LogCaptureFixture
) -> None:
    deferrer, gate = make("test-flush"), threading.Event()
    deferrer.defer(gate.wait)
    with caplog.at_level(logging.WARNING, logger="amtd.kube.deferring"):
        assert not deferrer.flush(timeout_s=0.05)
    assert "1 deferred tasks not finished" in caplog.text
    gate.set()
    assert deferrer.flush(timeout_s=10)


def test_close_finishes_the_backlog_and_ends_the_worker(make: Callable[..., Deferrer]) -> None:
    deferrer, done = make("test-close"), []
    deferrer.defer(lambda: done.append("queued"))
    assert deferrer.close(timeout_s=10)
    assert done == ["queued"]
    assert "test-close" not in {thread.name for thread in threading.enumerate()}
    deferrer.defer(lambda: done.append("after close"))  # no worker: done by the caller
    assert done == ["queued", "after close"]


def test_run_now_runs_at_once_and_logs_failures(caplog: pytest.LogCaptureFixture) -> None:
    done: list[int] = []
    run_now(lambda: done.append(1))
    assert done == [1]
    with caplog.at_level(logging.ERROR, logger="amtd.kube.deferring"):
        run_now(lambda: [][0])
    assert "IndexError" in caplog.text
