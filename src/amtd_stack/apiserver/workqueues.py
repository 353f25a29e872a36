"""Workqueues: which workloads a batch of store changes gives the workload controller to sync.

kube-controller-manager keys its work by object: a pod's change queues the ReplicaSet that
controls it (or, for an orphan, the ReplicaSets of its namespace, which may adopt it), a
ReplicaSet's change queues itself and its Deployment, a Deployment's change queues itself. The
stand-in does the same, so one deleted pod costs a sync of its ReplicaSet and Deployment, not a
pass over every object stored (a storm of 1 000 alerts on one Deployment made that pass most of
the stand-in's work). A Namespace change queues everything: a namespace going away stops pod
creation. Each queued object is synced at most once per batch, in (namespace, name) order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from amtd.model.objects import Object

from .storing import KindKey, ObjKey, Store, StoreEvent

DEPLOYMENTS: KindKey = ("apps", "deployments")
REPLICASETS: KindKey = ("apps", "replicasets")
PODS: KindKey = ("", "pods")
NAMESPACES: KindKey = ("", "namespaces")
BOOKKEEPING = ("resourceVersion", "managedFields")


def controller_uid(obj: Object) -> str | None:
    """The uid of the object's controller, if it has one."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def key_of(obj: Object) -> ObjKey:
    """The store key of an object: (namespace or "", name)."""
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


@dataclass(frozen=True)
class PodFacts:
    """What the ReplicaSet controller reads of a pod, worked out once per write of it."""

    pod: Object  # the stored object these facts are of
    owner: str | None  # its controller's uid
    labels: Mapping[str, str]
    ready: bool
    deleting: bool


def read_pod_facts(pod: Object) -> PodFacts:
    """The facts of one pod."""
    meta = pod["metadata"]
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in (pod.get("status") or {}).get("conditions") or ()
    )
    deleting = bool(meta.get("deletionTimestamp"))
    return PodFacts(pod, controller_uid(pod), meta.get("labels") or {}, ready, deleting)


class PodIndex:
    """Each stored pod's facts, by its controller's uid (orphans by namespace: what a
    ReplicaSet may adopt), kept by a store listener. A controller's live (not deleting) and
    ready pods are counted as they change, and the pods it has not looked at since they came
    under it or changed labels are noted: a sync of a ReplicaSet of 1 000 pods then reads the
    few that changed, not all of them."""

    def __init__(self, store: Store) -> None:
        self._facts: dict[ObjKey, PodFacts] = {}
        self._by_object: dict[int, PodFacts] = {}  # id() of the stored pod (kept alive here)
        self._controlled: dict[str, dict[ObjKey, PodFacts]] = {}
        self._orphans: dict[str, dict[ObjKey, PodFacts]] = {}  # by namespace
        self._live: dict[str, set[ObjKey]] = {}  # by controller uid: not deleting
        self._ready: dict[str, set[ObjKey]] = {}  # by controller uid: live and ready
        self._unchecked: dict[str, set[ObjKey]] = {}  # by controller uid
        with store.lock:
            for pod in store.items(PODS):
                self._place(key_of(pod), pod)
            store.add_listener(self.note)

    def note(self, event: StoreEvent) -> None:
        """Store listener (under the store lock)."""
        if event.kind_key == PODS:
            self._place(key_of(event.obj), None if event.type == "DELETED" else event.obj)

    def _place(self, key: ObjKey, pod: Object | None) -> None:
        old = self._facts.pop(key, None)
        if old is not None:
            del self._by_object[id(old.pod)]
            self._bucket(key, old).pop(key, None)
            for sets in (self._live, self._ready, self._unchecked):
                sets.get(old.owner or "", set()).discard(key)
        if pod is None:
            return
        facts = self._facts[key] = self._by_object[id(pod)] = read_pod_facts(pod)
        self._bucket(key, facts)[key] = facts
        if facts.owner is None:
            return
        if old is None or (old.owner, old.labels) != (facts.owner, facts.labels):
            self._unchecked.setdefault(facts.owner, set()).add(key)
        if not facts.deleting:
            self._live.setdefault(facts.owner, set()).add(key)
            if facts.ready:
                self._ready.setdefault(facts.owner, set()).add(key)

    def _bucket(self, key: ObjKey, facts: PodFacts) -> dict[ObjKey, PodFacts]:
        if facts.owner is None:
            return self._orphans.setdefault(key[0], {})
        return self._controlled.setdefault(facts.owner, {})

    def facts(self, pod: Object) -> PodFacts:
        """The facts of a stored pod (worked out anew for a copy the index has not seen)."""
        return self._by_object.get(id(pod)) or read_pod_facts(pod)

    def controlled_by(self, uid: str) -> list[PodFacts]:
        """The facts of the pods whose controller has this uid (call under the store lock)."""
        return list(self._controlled.get(uid, {}).values())

    def take_unchecked(self, uid: str) -> list[PodFacts]:
        """The controller's pods it has not looked at since they came under it or changed
        labels; from now on they count as looked at."""
        keys = self._unchecked.pop(uid, set())
        return [self._facts[key] for key in sorted(keys) if key in self._facts]

    def live(self, uid: str) -> list[PodFacts]:
        """The facts of the controller's pods that are not being deleted."""
        return [self._facts[key] for key in sorted(self._live.get(uid, ()))]

    def count_live(self, uid: str) -> int:
        """How many of the controller's pods are not being deleted."""
        return len(self._live.get(uid, ()))

    def count_ready(self, uid: str) -> int:
        """How many of the controller's pods are not being deleted and Ready."""
        return len(self._ready.get(uid, ()))

    def orphans_in(self, namespace: str) -> list[PodFacts]:
        """The facts of a namespace's pods without a controller (call under the store lock)."""
        return list(self._orphans.get(namespace, {}).values())


@dataclass
class Workqueue:
    """The objects to sync, by kind, as store keys (insertion-ordered sets)."""

    keys: dict[KindKey, dict[ObjKey, None]] = field(default_factory=dict)

    def add(self, kind_key: KindKey, key: ObjKey) -> None:
        """Queue one object."""
        self.keys.setdefault(kind_key, {})[key] = None

    def objects(self, store: Store, kind_key: KindKey) -> list[Object]:
        """The queued objects of a kind that still exist, in (namespace, name) order."""
        found = (store.get(kind_key, *key) for key in sorted(self.keys.get(kind_key, {})))
        return [obj for obj in found if obj is not None]


def queue_everything(store: Store) -> Workqueue:
    """Every Deployment, ReplicaSet and pod (the first sweep, or after a Namespace change)."""
    queue = Workqueue()
    for kind_key in (DEPLOYMENTS, REPLICASETS, PODS):
        for obj in store.items(kind_key):
            queue.add(kind_key, key_of(obj))
    return queue


def queue_changes(store: Store, changes: Iterable[StoreEvent]) -> Workqueue:
    """What the changes give the workload controller to sync (call under the store lock)."""
    queue = Workqueue()
    for event in changes:
        if event.kind_key == NAMESPACES:
            return queue_everything(store)
        if event.kind_key == PODS:
            queue_pod_change(store, event, queue)
        elif event.kind_key in (REPLICASETS, DEPLOYMENTS):
            if not is_status_change(event):  # its own status write gives it nothing to do
                queue.add(event.kind_key, key_of(event.obj))
            queue_controllers(store, (event.old, event.obj), DEPLOYMENTS, queue)
    return queue


def is_status_change(event: StoreEvent) -> bool:
    """Whether a change touched only the object's status (what its controller writes)."""
    old, new = event.old, event.obj
    if event.type != "MODIFIED" or old is None or old.get("spec") != new.get("spec"):
        return False
    return strip_bookkeeping(old["metadata"]) == strip_bookkeeping(new["metadata"])


def strip_bookkeeping(meta: Object) -> Object:
    """Metadata without what every write changes (resourceVersion, managedFields)."""
    return {key: value for key, value in meta.items() if key not in BOOKKEEPING}


def queue_pod_change(store: Store, event: StoreEvent, queue: Workqueue) -> None:
    """The pod itself (a new pod is started), its ReplicaSet before and after, and for an
    orphan every ReplicaSet of its namespace."""
    queue_controllers(store, (event.old, event.obj), REPLICASETS, queue)
    if event.type == "DELETED":
        return
    queue.add(PODS, key_of(event.obj))
    if controller_uid(event.obj) is None:
        namespace = key_of(event.obj)[0]
        for replicaset in store.items(REPLICASETS, namespace):
            queue.add(REPLICASETS, key_of(replicaset))


def queue_controllers(
    store: Store, objs: Iterable[Object | None], kind_key: KindKey, queue: Workqueue
) -> None:  # fmt: skip
    """Queue the controllers (of ``kind_key``) of the objects given."""
    for obj in objs:
        uid = controller_uid(obj) if obj is not None else None
        found = store.by_uid(uid) if uid else None
        if found is not None and found[0] == kind_key:
            queue.add(kind_key, key_of(found[1]))
