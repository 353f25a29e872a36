"""The background controller loop: garbage collection and workload emulation.

Event-driven, not polled: every store change sets a flag; the loop wakes, sweeps until a sweep
changes nothing (its own writes set the flag again), and sleeps until the next change.
"""

from __future__ import annotations

import logging
import threading

from .collecting import collect_garbage
from .resources import Registry
from .storing import Store
from .workloads import Workloads

LOG = logging.getLogger(__name__)
MAX_SWEEPS = 100  # a safety net against a reconcile that never converges


class Controllers:
    """One daemon thread running the garbage collector and (optionally) the workload controller."""

    def __init__(self, store: Store, registry: Registry, workloads: bool) -> None:
        self.store = store
        self.registry = registry
        self.workloads = Workloads(store, registry) if workloads else None
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apiserver-controllers", daemon=True)
        store.add_listener(lambda _event: self._dirty.set())

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

    def sweep(self) -> None:
        """Collect garbage, then reconcile workloads, until a round changes nothing."""
        for _ in range(MAX_SWEEPS):
            before = self.store.rv
            collect_garbage(self.store, self.registry)
            if self.workloads is not None:
                self.workloads.reconcile()
            if self.store.rv == before or self._stopping.is_set():
                return
        LOG.warning("controllers did not converge after %d sweeps", MAX_SWEEPS)
