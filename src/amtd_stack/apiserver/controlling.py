"""The background controller loop: garbage collection and workload emulation.

Event-driven, not polled: every store change is queued and sets a flag; the loop wakes, sweeps
what the queued changes affect until a sweep changes nothing (its own writes queue more), and
sleeps until the next change. The first sweep looks at everything. Sweeps hold the store lock,
so they are kept to the changes: an alert must not pay for every object stored before it. And
after each round the loop rests PAUSE_FACTOR times as long as the round took: a ReplicaSet of
1 000 pods takes milliseconds to sync, and a storm of pod deletions must not keep the lock (and
the API server's requests) waiting most of the time; the changes meanwhile are batched into the
next round, as a controller's work queue batches them.
"""

from __future__ import annotations

import logging
import threading
import time

from .collecting import collect_garbage
from .daemonsets import DaemonSetController
from .jobs import JobController
from .resources import Registry
from .storing import Store, StoreEvent
from .workloads import Workloads, is_workload_change

LOG = logging.getLogger(__name__)
MAX_SWEEPS = 100  # a safety net against a reconcile that never converges
PAUSE_FACTOR = 3.0  # rest after a round, in multiples of its duration: the lock is free >= 3/4
MAX_PAUSE_S = 0.1


class Controllers:
    """One daemon thread running the garbage collector and (optionally) the workload controller."""

    def __init__(self, store: Store, registry: Registry, workloads: bool) -> None:
        self.store = store
        self.registry = registry
        self.workloads = Workloads(store, registry) if workloads else None
        if self.workloads is not None:
            self.workloads.extras += [
                JobController(self.workloads).reconcile,
                DaemonSetController(self.workloads).reconcile,
            ]
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apiserver-controllers", daemon=True)
        self._changes: list[StoreEvent] | None = None  # None: look at everything
        self._changes_lock = threading.Lock()
        store.add_listener(self._note)

    def _note(self, event: StoreEvent) -> None:
        """Store listener (under the store lock): queue the change, wake the loop."""
        with self._changes_lock:
            if self._changes is not None:
                self._changes.append(event)
        self._dirty.set()

    def _take_changes(self) -> list[StoreEvent] | None:
        """The changes queued since the last call (None: everything), leaving the queue empty."""
        with self._changes_lock:
            changes, self._changes = self._changes, []
        return changes

    def start(self) -> None:
        """Start the loop (an initial sweep runs at once)."""
        self._dirty.set()
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the loop and wait for it."""
        self._stopping.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.is_set():
                return
            self._dirty.clear()
            try:
                self.sweep()
            except Exception:  # keep the controllers alive; a bug shows in the log
                LOG.exception("controller sweep failed")
                with self._changes_lock:
                    self._changes = None  # what it was sweeping is lost: look at everything

    def sweep(self) -> None:
        """Collect garbage, then reconcile workloads, until a round changes nothing."""
        for _ in range(MAX_SWEEPS):
            changes = self._take_changes()
            if changes == [] or self._stopping.is_set():
                return
            started = time.monotonic()
            collect_garbage(self.store, self.registry, changes)
            if self.workloads is not None and (
                changes is None or any(is_workload_change(event) for event in changes)
            ):
                self.workloads.reconcile(changes)
            rest = (time.monotonic() - started) * PAUSE_FACTOR
            self._stopping.wait(min(rest, MAX_PAUSE_S))
        LOG.warning("controllers did not converge after %d sweeps", MAX_SWEEPS)
