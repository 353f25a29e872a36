"""The object store: one lock, one resourceVersion counter, a bounded event history.

Stored dicts are never mutated in place: every write replaces the object, so events and readers
may share references. Callers that hold `store.lock` can compose read-modify-write atomically.
An owner index (owner uid -> dependents) lets the garbage collector look at the dependents of
one object without scanning the store.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from amtd.model.objects import Object

KindKey = tuple[str, str]  # (group, plural): storage is version-independent
ObjKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class StoreEvent:
    """One change: its resourceVersion, ADDED/MODIFIED/DELETED, the object before and after."""

    rv: int
    type: str
    kind_key: KindKey
    obj: Object
    old: Object | None


Listener = Callable[[StoreEvent], None]


class Store:
    """Objects by kind and (namespace, name), with a uid index and watchable history."""

    def __init__(self, history_limit: int = 5000) -> None:
        self.lock = threading.Condition(threading.RLock())
        self._objects: dict[KindKey, dict[ObjKey, Object]] = {}
        self._uids: dict[str, tuple[KindKey, ObjKey]] = {}
        self._dependents: dict[str, set[tuple[KindKey, ObjKey]]] = {}  # by owner uid
        self._history: list[StoreEvent] = []
        self._history_rvs: list[int] = []
        self.history_limit = history_limit  # events kept for resourceVersion watches
        self._rv = 0
        self._compacted_rv = 0  # events at or below this rv are gone from history
        self._listeners: list[Listener] = []
        self.closed = False
        self._streams = 0  # watch responses not yet fully written

    @property
    def rv(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event)` (under the lock; keep it quick) after every change."""
        with self.lock:
            self._listeners.append(listener)

    def get(self, kind_key: KindKey, namespace: str, name: str) -> Object | None:
        """The stored object or None (shared reference: do not mutate)."""
        with self.lock:
            return self._objects.get(kind_key, {}).get((namespace, name))

    def by_uid(self, uid: str) -> tuple[KindKey, Object] | None:
        """The (kind key, object) with this uid, or None."""
        with self.lock:
            where = self._uids.get(uid)
            if where is None:
                return None
            return where[0], self._objects[where[0]][where[1]]

    def dependents(self, uid: str) -> list[tuple[KindKey, Object]]:
        """The objects with an ownerReference to `uid` (the owner may be gone already)."""
        with self.lock:
            found = self._dependents.get(uid, ())
            return [(kk, self._objects[kk][key]) for kk, key in found]

    def items(self, kind_key: KindKey, namespace: str | None = None) -> list[Object]:
        """Objects of a kind, optionally in one namespace, ordered by namespace and name."""
        with self.lock:
            bucket = self._objects.get(kind_key, {})
            keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
            return [bucket[k] for k in keys]

    def all_items(self) -> Iterator[tuple[KindKey, Object]]:
        """Every stored object with its kind key (a snapshot; call under the lock)."""
        with self.lock:
            snapshot = [
                (kk, obj) for kk, bucket in self._objects.items() for obj in bucket.values()
            ]
        return iter(snapshot)

    def write(self, kind_key: KindKey, obj: Object) -> Object:
        """Store `obj` (taking ownership) with a fresh resourceVersion; ADDED or MODIFIED."""
        with self.lock:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            bucket = self._objects.setdefault(kind_key, {})
            old = bucket.get(key)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[key] = obj
            self._uids[meta["uid"]] = (kind_key, key)
            self._index_owners(kind_key, key, old, obj)
            self._record(StoreEvent(self._rv, "MODIFIED" if old else "ADDED", kind_key, obj, old))
            return obj

    def remove(self, kind_key: KindKey, namespace: str, name: str) -> Object | None:
        """Delete an object for good; its DELETED event carries a fresh resourceVersion."""
        with self.lock:
            old = self._objects.get(kind_key, {}).pop((namespace, name), None)
            if old is None:
                return None
            self._uids.pop(old["metadata"]["uid"], None)
            self._index_owners(kind_key, (namespace, name), old, None)
            self._rv += 1
            gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._rv)}}
            self._record(StoreEvent(self._rv, "DELETED", kind_key, gone, old))
            return gone

    def drop_kind(self, kind_key: KindKey) -> list[Object]:
        """Delete every object of a kind (its CRD went away); returns what was removed."""
        with self.lock:
            removed = []
            for obj in self.items(kind_key):
                meta = obj["metadata"]
                gone = self.remove(kind_key, meta.get("namespace", ""), meta["name"])
                if gone is not None:
                    removed.append(gone)
            return removed

    def _index_owners(
        self, kind_key: KindKey, key: ObjKey, old: Object | None, new: Object | None
    ) -> None:
        """Move the object's entries in the owner index from `old`'s owners to `new`'s."""
        where = (kind_key, key)
        for uid in owner_uids(old) - owner_uids(new):
            dependents = self._dependents.get(uid)
            if dependents is not None:
                dependents.discard(where)
                if not dependents:
                    del self._dependents[uid]
        for uid in owner_uids(new):
            self._dependents.setdefault(uid, set()).add(where)

    def _record(self, event: StoreEvent) -> None:
        self._history.append(event)
        self._history_rvs.append(event.rv)
        if len(self._history) > 2 * self.history_limit:
            cut = len(self._history) - self.history_limit
            self._compacted_rv = self._history_rvs[cut - 1]
            del self._history[:cut]
            del self._history_rvs[:cut]
        for listener in self._listeners:
            listener(event)
        self.lock.notify_all()

    def events_after(self, rv: int) -> list[StoreEvent] | None:
        """Events with resourceVersion > rv, or None when history no longer reaches back."""
        with self.lock:
            if rv < self._compacted_rv:
                return None
            start = bisect.bisect_right(self._history_rvs, rv)
            return self._history[start:]

    def wait_events(self, rv: int, timeout: float) -> list[StoreEvent] | None:
        """Events after rv, waiting up to `timeout` s; [] on timeout or close; None if too old."""
        with self.lock:
            events = self.events_after(rv)
            if events == [] and not self.closed:
                self.lock.wait(timeout)
                events = self.events_after(rv)
            return events

    def close(self) -> None:
        """Wake every waiter for good (server stopping)."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def open_stream(self) -> None:
        """A watch response starts; :meth:`end_stream` once it is written to its end."""
        with self.lock:
            self._streams += 1

    def end_stream(self) -> None:
        """A watch response is written to its end (its last chunk sent) or abandoned."""
        with self.lock:
            self._streams -= 1
            self.lock.notify_all()

    def wait_streams_ended(self, timeout_s: float) -> bool:
        """After :meth:`close`: wait until every watch response has ended cleanly, as a real
        API server ends its watches on shutdown before it closes their connections."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while self._streams and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)
            return self._streams == 0


def owner_uids(obj: Object | None) -> set[str]:
    """The uids the object's ownerReferences name (none for None)."""
    if obj is None:
        return set()
    return {str(ref.get("uid")) for ref in obj["metadata"].get("ownerReferences") or []}
