"""Indexing: each namespace's PolicyIndex kept warm in a matcher process, while a watch on the
AMTDs says nothing changed there.

Rebuilding a namespace's index per event costs a list and a parse of every AMTD in it (about
140 ms at 10 000). A warm process instead keeps the index per namespace and drops it when the
watch reports any change to an AMTD there. The cache is only used while a watch session is
open; a session starts at the collection's current resourceVersion, and an index is stored only
if it was listed after its session started and no change to its namespace arrived meanwhile, so
a stored index is never older than what the watch has delivered. When the watch breaks or ends,
every index is dropped and events are decided from fresh lists (as a cold process decides)
until a new session is open. The one staleness left is the watch's own delay (milliseconds):
an AMTD changed that recently may not yet count, as with any Kubernetes controller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from amtd.decide.matching import PolicyIndex
from amtd.kube.api import POLICIES, Cluster
from amtd.kube.apierrors import ApiError
from amtd.model.policies import Policy

logger = logging.getLogger(__name__)
RETRY_DELAY_S = 1.0

ListPolicies = Callable[[Cluster, str], list[Policy]]


@dataclass
class PolicyIndexes:
    """The warm indexes of one process; thread-safe. ``start`` begins the watch (once)."""

    list_policies: ListPolicies
    indexes: dict[str, PolicyIndex] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)  # per namespace, since the session
    session: int = 0  # odd: a watch session is open
    watched: Cluster | None = None  # the connection the open session watches
    lock: threading.Lock = field(default_factory=threading.Lock)
    watcher: threading.Thread | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def index_for(self, cluster: Cluster, namespaces: Iterable[str]) -> PolicyIndex:
        """The index of the AMTDs in ``namespaces``, warm where it can be."""
        return PolicyIndex.combine([self.namespace_index(cluster, ns) for ns in sorted(namespaces)])

    def namespace_index(self, cluster: Cluster, namespace: str) -> PolicyIndex:
        """One namespace's index: the stored one, else listed (and stored if still current)."""
        with self.lock:
            is_watched = cluster is self.watched  # only what the watch sees can be kept
            stored = self.indexes.get(namespace) if is_watched else None
            session, changes = self.session, self.changes.get(namespace, 0)
        if stored is not None:
            return stored
        index = PolicyIndex.from_policies(self.list_policies(cluster, namespace))
        with self.lock:
            is_current = self.session == session and self.changes.get(namespace, 0) == changes
            if is_watched and session % 2 == 1 and is_current:
                self.indexes[namespace] = index
        return index

    def note_change(self, namespace: str) -> None:
        """An AMTD in ``namespace`` changed: its index is dropped, a listing in flight not kept."""
        with self.lock:
            self.indexes.pop(namespace, None)
            self.changes[namespace] = self.changes.get(namespace, 0) + 1

    def open_session(self, cluster: Cluster) -> None:
        """A watch session on ``cluster`` begins: indexes listed from now on may be kept."""
        with self.lock:
            self.indexes.clear()
            self.changes.clear()
            self.watched = cluster
            self.session += 1 if self.session % 2 == 0 else 2

    def close_session(self) -> None:
        """The watch ended or broke: nothing stored is trusted any more."""
        with self.lock:
            self.indexes.clear()
            self.changes.clear()
            self.watched = None
            self.session += 1 if self.session % 2 == 1 else 0

    def start_watching(self, connect: Callable[[], Cluster]) -> None:
        """Start the background watch (once per process; a daemon thread)."""
        with self.lock:
            if self.watcher is not None:
                return
            self.watcher = threading.Thread(
                target=self.watch_forever, args=(connect,), name="amtd-policy-watch", daemon=True
            )
        self.watcher.start()

    def watch_forever(self, connect: Callable[[], Cluster]) -> None:
        """Watch every namespace's AMTDs, session after session, until :meth:`stop`; a failure
        is logged when it differs from the one before (a cluster that stays away logs once)."""
        last = ""
        while not self.stopping.is_set():
            try:
                self.watch_session(connect())
                last = ""
            except Exception as error:  # never let the cache outlive its watch silently
                if str(error) != last:
                    logger.warning("AMTD watch interrupted (%s): deciding from fresh lists", error)
                last = str(error)
            finally:
                self.close_session()
            self.stopping.wait(RETRY_DELAY_S)

    def stop(self) -> None:
        """End the watch after its current session (tests; a process just exits)."""
        self.stopping.set()

    def watch_session(self, cluster: Cluster) -> None:
        """One session: from the collection's current version until the server ends it."""
        since = cluster.collection_version(POLICIES)
        self.open_session(cluster)
        for event in cluster.watch(POLICIES, since):
            if self.stopping.is_set():
                return
            if event.get("type") == "ERROR":
                raise ApiError(0, "WatchError", str(event.get("object"))[:200])
            meta = (event.get("object") or {}).get("metadata") or {}
            if event.get("type") != "BOOKMARK":
                self.note_change(str(meta.get("namespace") or ""))


_WARM: list[PolicyIndexes] = []
_WARM_LOCK = threading.Lock()


def warm_policy_indexes(
    list_policies: ListPolicies, connect: Callable[[], Cluster]
) -> PolicyIndexes:
    """This process's warm policy indexes, their watch started on first use (the matcher's)."""
    with _WARM_LOCK:
        if not _WARM:
            _WARM.append(PolicyIndexes(list_policies))
    _WARM[0].start_watching(connect)
    return _WARM[0]


def reset_warm_policy_indexes() -> None:
    """Stop this process's warm indexes and forget them: the next use starts afresh, on the
    connection of that moment (as :func:`amtd.kube.api.reset_shared_cluster` does for calls)."""
    with _WARM_LOCK:
        for warm in _WARM:
            warm.stop()
        _WARM.clear()
