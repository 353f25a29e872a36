"""Garbage collection: owner references, foreground/orphan finalizers, namespace termination.

One `collect_garbage` sweep runs under the store lock and reports whether it changed anything;
the controller loop repeats sweeps until nothing changes. Owners are matched by uid only.
A sweep looks at the whole store only when told nothing about what changed (at start); given
the changes, it looks at the objects they can unblock: each changed object, its dependents,
its owners (before and after) and its namespace, so a sweep costs what changed, not the store.
"""

from __future__ import annotations

import copy

from amtd.model.objects import Object

from .deleting import (
    FOREGROUND,
    NAMESPACES,
    ORPHAN,
    finalize_or_write,
    remove_object,
    request_deletion,
)
from .resources import Registry
from .storing import KindKey, Store, StoreEvent, owner_uids


def _dependents(store: Store, uid: str) -> list[tuple[KindKey, Object]]:
    return store.dependents(uid)


def _drop_finalizer(
    store: Store, registry: Registry, kind_key: KindKey, obj: Object, finalizer: str
) -> None:
    new = copy.deepcopy(obj)
    new["metadata"]["finalizers"] = [f for f in new["metadata"]["finalizers"] if f != finalizer]
    if not new["metadata"]["finalizers"]:
        del new["metadata"]["finalizers"]
    finalize_or_write(store, registry, kind_key, new)


def _orphan_dependents(store: Store, registry: Registry, kind_key: KindKey, owner: Object) -> None:
    uid = owner["metadata"]["uid"]
    for dep_key, dep in _dependents(store, uid):
        new = copy.deepcopy(dep)
        refs = [r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid]
        new["metadata"]["ownerReferences"] = refs
        if not refs:
            del new["metadata"]["ownerReferences"]
        store.write(dep_key, new)
    _drop_finalizer(store, registry, kind_key, owner, ORPHAN)


def _delete_dependents_first(
    store: Store, registry: Registry, kind_key: KindKey, owner: Object
) -> bool:
    deps = _dependents(store, owner["metadata"]["uid"])
    if not deps:
        _drop_finalizer(store, registry, kind_key, owner, FOREGROUND)
        return True
    changed = False
    for dep_key, dep in deps:
        if not dep["metadata"].get("deletionTimestamp"):
            request_deletion(store, registry, dep_key, dep, "Foreground")
            changed = True
    return changed


def _empty_namespace(store: Store, registry: Registry, namespace: Object) -> bool:
    name = namespace["metadata"]["name"]
    content = [(kk, o) for kk, o in store.all_items() if o["metadata"].get("namespace") == name]
    changed = False
    for kind_key, obj in content:
        if not obj["metadata"].get("deletionTimestamp"):
            request_deletion(store, registry, kind_key, obj)
            changed = True
    still_there = any(store.get(kk, name, o["metadata"]["name"]) for kk, o in content)
    if still_there or namespace["metadata"].get("finalizers"):
        return changed
    remove_object(store, registry, NAMESPACES, namespace)
    return True


def _finish_deletion(store: Store, registry: Registry, kind_key: KindKey, obj: Object) -> bool:
    finalizers = obj["metadata"].get("finalizers") or []
    if ORPHAN in finalizers:
        _orphan_dependents(store, registry, kind_key, obj)
        return True
    if FOREGROUND in finalizers:
        return _delete_dependents_first(store, registry, kind_key, obj)
    if kind_key == NAMESPACES:
        return _empty_namespace(store, registry, obj)
    return False


def _is_abandoned(store: Store, obj: Object) -> bool:
    uids = owner_uids(obj)
    return bool(uids) and all(store.by_uid(uid) is None for uid in uids)


def _neighbours(store: Store, event: StoreEvent) -> list[tuple[KindKey, Object]]:
    """What a change can unblock: the object, its dependents, its owners, its namespace."""
    meta = event.obj["metadata"]
    found = [(event.kind_key, event.obj), *store.dependents(meta["uid"])]
    for uid in owner_uids(event.obj) | owner_uids(event.old):
        owner = store.by_uid(uid)
        found += [owner] if owner is not None else []
    namespace = store.get(NAMESPACES, "", meta.get("namespace") or "")
    return [*found, (NAMESPACES, namespace)] if namespace is not None else found


def _affected(store: Store, changes: list[StoreEvent]) -> list[tuple[KindKey, Object]]:
    """The objects a sweep must look at after `changes`, once each (in change order)."""
    affected: dict[str, tuple[KindKey, Object]] = {}
    for event in changes:
        for kind_key, obj in _neighbours(store, event):
            affected.setdefault(obj["metadata"]["uid"], (kind_key, obj))
    return list(affected.values())


def collect_garbage(
    store: Store, registry: Registry, changes: list[StoreEvent] | None = None
) -> bool:
    """One sweep over everything, or over what `changes` affect; True if it changed anything."""
    changed = False
    with store.lock:
        candidates = store.all_items() if changes is None else iter(_affected(store, changes))
        for kind_key, obj in candidates:
            meta = obj["metadata"]
            current = store.get(kind_key, meta.get("namespace", ""), meta["name"])
            if current is None or current["metadata"]["uid"] != meta["uid"]:
                continue  # removed earlier in this sweep
            if current["metadata"].get("deletionTimestamp"):
                changed |= _finish_deletion(store, registry, kind_key, current)
            elif _is_abandoned(store, current):
                request_deletion(store, registry, kind_key, current)
                changed = True
    return changed
