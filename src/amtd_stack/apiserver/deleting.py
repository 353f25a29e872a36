"""Deletion: finalizers, deletionTimestamp, propagation policies, and removal side effects.

Foreground and Orphan are recorded as the `foregroundDeletion` / `orphan` finalizers, exactly as
the real server does; the garbage collector (collecting.py) does the rest asynchronously.
Namespaces carry `spec.finalizers: [kubernetes]` and are removed once empty.
"""

from __future__ import annotations

import copy
from typing import Any

from amtd.model.objects import Object

from .apierrors import bad_request
from .resources import Registry
from .stamping import now_rfc3339
from .storing import KindKey, Store

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = {"Background": None, "Foreground": FOREGROUND, "Orphan": ORPHAN}
NAMESPACES: KindKey = ("", "namespaces")
CRDS: KindKey = ("apiextensions.k8s.io", "customresourcedefinitions")


# Kinds whose objects orphan their dependents unless told otherwise (batch/v1 Jobs, kept so
# by upstream for compatibility); every other kind deletes them in the background.
ORPHANING_KINDS: frozenset[KindKey] = frozenset({("batch", "jobs")})


def propagation_policy(options: dict[str, Any], kind_key: KindKey | None = None) -> str:
    """The policy from DeleteOptions (or query), defaulting to Background (Orphan for the
    ORPHANING_KINDS); 400 if unknown."""
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") in (True, "true"):
        policy = "Orphan"
    policy = policy or ("Orphan" if kind_key in ORPHANING_KINDS else "Background")
    if policy not in POLICIES:
        raise bad_request(f"unsupported propagationPolicy {policy!r}")
    return str(policy)


def is_blocked(kind_key: KindKey, obj: Object) -> bool:
    """Whether finalizers (or a namespace's spec finalizers) keep the object around."""
    if obj["metadata"].get("finalizers"):
        return True
    return kind_key == NAMESPACES and bool((obj.get("spec") or {}).get("finalizers"))


def remove_object(
    store: Store, registry: Registry, kind_key: KindKey, obj: Object
) -> Object | None:
    """Remove for good, with side effects (a CRD takes its types and instances with it)."""
    meta = obj["metadata"]
    gone = store.remove(kind_key, meta.get("namespace", ""), meta["name"])
    if gone is not None and kind_key == CRDS:
        registry.unregister_crd(meta["name"])
        spec = obj.get("spec") or {}
        store.drop_kind((spec.get("group", ""), (spec.get("names") or {}).get("plural", "")))
    return gone


def finalize_or_write(
    store: Store, registry: Registry, kind_key: KindKey, obj: Object
) -> tuple[Object, bool]:
    """Write `obj`, or remove it if it is being deleted and nothing blocks it any more.

    Returns (object as stored or as last seen, whether it still exists).
    """
    if obj["metadata"].get("deletionTimestamp") and not is_blocked(kind_key, obj):
        return remove_object(store, registry, kind_key, obj) or obj, False
    return store.write(kind_key, obj), True


def request_deletion(
    store: Store, registry: Registry, kind_key: KindKey, obj: Object, policy: str = "Background"
) -> tuple[Object, bool]:
    """Delete now or mark for deletion; returns (object, whether it still exists)."""
    finalizer = POLICIES[policy]
    new = copy.deepcopy(obj)
    meta = new["metadata"]
    wanted = finalizer and (finalizer == ORPHAN or _has_dependents(store, meta["uid"]))
    if wanted and finalizer not in (meta.get("finalizers") or []):
        meta["finalizers"] = [*(meta.get("finalizers") or []), finalizer]
    if not is_blocked(kind_key, new):
        return remove_object(store, registry, kind_key, new) or new, False
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = now_rfc3339()
        meta["deletionGracePeriodSeconds"] = 0
        meta["generation"] = int(meta.get("generation") or 1) + 1
        if kind_key == NAMESPACES:
            new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
    if new == obj:
        return obj, True
    return store.write(kind_key, new), True


def _has_dependents(store: Store, uid: str) -> bool:
    return bool(store.dependents(uid))
