"""The workload controller's work queues and pod index (amtd_stack.apiserver.workqueues): a
change queues only the objects it concerns, and the index always agrees with the store."""

from __future__ import annotations

from typing import Any

from amtd_stack.apiserver.storing import Store, StoreEvent
from amtd_stack.apiserver.workqueues import (
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    REPLICASETS,
    PodIndex,
    queue_changes,
)


def make(kind: str, name: str, uid: str, owner: str | None = None, **rest: Any) -> dict[str, Any]:
    """A minimal stored object in namespace ``shop``, controlled by uid ``owner``."""
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid}
    if owner is not None:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "X", "name": "x"}]
    return {"kind": kind, "metadata": meta, **rest}


def recording(store: Store) -> list[StoreEvent]:
    """Every change made to ``store`` from now on."""
    events: list[StoreEvent] = []
    store.add_listener(events.append)
    return events


def queued(store: Store, changes: list[StoreEvent]) -> dict[str, list[str]]:
    """What the changes queue, by plural, as names."""
    queue = queue_changes(store, changes)
    kinds = {"deployments": DEPLOYMENTS, "replicasets": REPLICASETS, "pods": PODS}
    return {plural: [o["metadata"]["name"] for o in queue.objects(store, kind)]
            for plural, kind in kinds.items()}  # fmt: skip


def seeded() -> Store:
    """Deployment web -> ReplicaSets web-1 (owning pod p1) and web-2; another ReplicaSet db."""
    store = Store()
    store.write(DEPLOYMENTS, make("Deployment", "web", "d", spec={"replicas": 1}))
    store.write(REPLICASETS, make("ReplicaSet", "web-1", "r1", "d", spec={"replicas": 1}))
    store.write(REPLICASETS, make("ReplicaSet", "web-2", "r2", "d", spec={"replicas": 0}))
    store.write(REPLICASETS, make("ReplicaSet", "db", "r3", spec={"replicas": 1}))
    store.write(PODS, make("Pod", "p1", "u1", "r1", status={"phase": "Running"}))
    return store


def test_a_deleted_pod_queues_only_its_replicaset() -> None:
    store = seeded()
    events = recording(store)
    store.remove(PODS, "shop", "p1")
    assert queued(store, events) == {"deployments": [], "replicasets": ["web-1"], "pods": []}


def test_an_orphan_queues_the_replicasets_of_its_namespace_and_itself() -> None:
    store = seeded()
    events = recording(store)
    store.write(PODS, make("Pod", "stray", "u9"))
    assert queued(store, events) == {
        "deployments": [], "replicasets": ["db", "web-1", "web-2"], "pods": ["stray"],
    }  # fmt: skip


def test_a_status_write_queues_the_controller_not_the_object() -> None:
    store = seeded()
    events = recording(store)
    replicaset = store.get(REPLICASETS, "shop", "web-1")
    assert replicaset is not None
    store.write(REPLICASETS, {**replicaset, "metadata": dict(replicaset["metadata"]),
                              "status": {"replicas": 1}})  # fmt: skip
    assert queued(store, events)["replicasets"] == []
    assert queued(store, events)["deployments"] == ["web"]
    store.write(REPLICASETS, {**replicaset, "metadata": dict(replicaset["metadata"]),
                              "spec": {"replicas": 3}})  # fmt: skip
    assert queued(store, events[1:])["replicasets"] == ["web-1"]


def test_a_namespace_change_queues_everything() -> None:
    store = seeded()
    events = recording(store)
    store.write(NAMESPACES, {"metadata": {"name": "shop", "uid": "n"}})
    assert queued(store, events) == {
        "deployments": ["web"], "replicasets": ["db", "web-1", "web-2"], "pods": ["p1"],
    }  # fmt: skip


def test_the_pod_index_follows_every_write() -> None:
    store = seeded()
    index = PodIndex(store)
    assert [f.pod["metadata"]["name"] for f in index.controlled_by("r1")] == ["p1"]
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    store.write(PODS, make("Pod", "p2", "u2", "r1", status=ready))
    store.write(PODS, make("Pod", "p1", "u1"))  # orphaned
    assert [(f.pod["metadata"]["name"], f.ready) for f in index.controlled_by("r1")] == [
        ("p2", True)
    ]
    assert [f.pod["metadata"]["name"] for f in index.orphans_in("shop")] == ["p1"]
    store.remove(PODS, "shop", "p1")
    assert index.orphans_in("shop") == []
    stored = store.get(PODS, "shop", "p2")
    assert stored is not None and index.facts(stored).pod is stored
    copy = {**stored, "metadata": {**stored["metadata"], "deletionTimestamp": "now"}}
    assert index.facts(copy).deleting  # a copy never seen is read afresh
