"""Deferring: best-effort work done after a function has answered, by one background worker.

Kubernetes Events are an audit trail for ``kubectl describe``, not part of a decision or of
exactly-once (the status is, and it is written before the reply). Writing them after the reply
takes an API round trip off the critical path of every event. The backlog is bounded: a task
that does not fit runs at once in the caller, so nothing is dropped and memory stays flat when
the API server is slow. A task's failure is logged (the Event writers log their own API errors);
at exit the worker is given a few seconds to finish what is queued, and what it could not
finish is logged. :func:`run_now` is the synchronous stand-in for callers without a worker.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Callable

LOG = logging.getLogger(__name__)
CAPACITY = 1000
FLUSH_TIMEOUT_S = 5.0

Task = Callable[[], None]
Defer = Callable[[Task], None]


def run_now(task: Task) -> None:
    """Do the task at once, in the caller (no worker: tests, command-line tools)."""
    run_logged(task)


def run_logged(task: Task) -> None:
    """Run a task; an exception it lets escape is logged, never raised."""
    try:
        task()
    except Exception:  # best effort: the reply has been sent, nobody could act on it
        LOG.exception("deferred task %r failed", task)


class Deferrer:
    """A bounded backlog of tasks and the daemon thread that runs them in order."""

    def __init__(self, name: str = "amtd-deferred", capacity: int = CAPACITY) -> None:
        self.name = name
        self.capacity = capacity
        self._tasks: deque[Task] = deque()
        self._pending = 0  # queued or running
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Tasks queued or running."""
        with self._changed:
            return self._pending

    def defer(self, task: Task) -> None:
        """Queue the task for the worker; run it now when the backlog is full."""
        with self._changed:
            queued = self._pending < self.capacity and not self._closing
            if queued:
                self._tasks.append(task)
                self._pending += 1
                self._changed.notify_all()
                self._start()
        if not queued:
            if not self._closing:
                LOG.warning("deferred backlog full (%d tasks): running this one now", self.capacity)
            run_logged(task)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every queued task ran; False (logged) when time ran out first."""
        with self._changed:
            done = self._changed.wait_for(lambda: self._pending == 0, timeout_s)
            left = self._pending
        if not done:
            LOG.warning("%d deferred tasks not finished within %.1f s", left, timeout_s)
        return done

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Finish what is queued (as :meth:`flush`), then end the worker; later tasks run at
        once in their caller."""
        done = self.flush(timeout_s)
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return done

    def _start(self) -> None:
        """Start the worker on first use (under the lock; after a fork, in the child)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._tasks) or self._closing)
                if not self._tasks:
                    return  # closing, and nothing left
                task = self._tasks.popleft()
            run_logged(task)
            with self._changed:
                self._pending -= 1
                self._changed.notify_all()


_SHARED: list[Deferrer] = []
_SHARED_LOCK = threading.Lock()


def shared_deferrer() -> Deferrer:
    """The process's one worker, made on first use and flushed when the process exits."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(Deferrer())
            atexit.register(_SHARED[0].flush)
        return _SHARED[0]
