"""Workload emulation: Deployment -> ReplicaSet -> Pods, and a "kubelet" that runs pods at once.

No containers run: a pod is "Running" and Ready the moment it is created, on node `node-1`.
ReplicaSets orphan pods whose labels stop matching (dropping their ownerReference, as the real
controller does), adopt matching orphans, and create or delete pods to reach `spec.replicas`.
A Deployment owns one ReplicaSet per pod template (`<name>-<10-char template hash>`); older ones
are scaled to zero at once. Every write is skipped when it would change nothing, so the
controller loop converges.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from amtd.model.objects import Object

from .defaulting import default_pod
from .deleting import request_deletion
from .resources import Registry
from .revisions import record_revision, surplus_replicasets
from .selectors import compile_label_selector
from .stamping import now_rfc3339, random_suffix, stamp_created
from .storing import KindKey, Store, StoreEvent
from .workqueues import (
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    REPLICASETS,
    PodIndex,
    controller_uid,
    queue_changes,
    queue_everything,
)

# Kinds the other controllers (jobs.py, daemonsets.py) read, so their changes mean work too.
OTHER_CONTROLLED: tuple[KindKey, ...] = (("batch", "jobs"), ("apps", "daemonsets"), ("", "nodes"))
HASH_LABEL = "pod-template-hash"
NODE_NAME = "node-1"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Any) -> str:
    """A stable 10-character [bcdfghjklmnpqrstvwxz2456789] hash of a pod template."""
    # Nulls are dropped first: a template read back by a Go client (kubectl rollout undo)
    # carries `creationTimestamp: null`, which upstream's hash of the decoded struct never sees.
    digest = hashlib.sha256(json.dumps(_without_nulls(template), sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def controller_ref(owner: Object) -> Object:
    """A controller ownerReference to `owner`."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_workload_change(event: StoreEvent) -> bool:
    """Whether a change can give the workload controller work: other kinds never do, nor a
    pod change the controllers do not read (an annotation, such as an executor's claim)."""
    if event.kind_key not in (DEPLOYMENTS, REPLICASETS, PODS, NAMESPACES, *OTHER_CONTROLLED):
        return False
    if event.kind_key != PODS or event.type != "MODIFIED" or event.old is None:
        return True
    return _controlled_parts(event.old) != _controlled_parts(event.obj)


def _controlled_parts(pod: Object) -> tuple[Any, ...]:
    """What the controllers read of a pod: labels, owners, deletion, spec and status."""
    meta = pod["metadata"]
    parts = ("labels", "ownerReferences", "deletionTimestamp")
    return (*(meta.get(part) for part in parts), pod.get("spec"), pod.get("status"))


def _write_if_changed(store: Store, kind_key: KindKey, old: Object, new: Object) -> None:
    if new != old:
        store.write(kind_key, new)


class Workloads:
    """Reconciles deployments, replicasets and pods; call `reconcile()` under no lock."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._ips = itertools.count(2)
        self.extras: list[Callable[[], None]] = []  # more reconcilers, run after these
        self.pods = PodIndex(store)
        # the selector each replicaset's pods were last looked at against, by its uid
        self._selectors: dict[str, Object] = {}

    def reconcile(self, changes: Sequence[StoreEvent] | None = None) -> None:
        """Sync the deployments, replicasets and unstarted pods the changes affect (None:
        every one; :mod:`.workqueues`), then the extra reconcilers."""
        with self.store.lock:
            queue = queue_everything(self.store) if changes is None else queue_changes(
                self.store, changes
            )  # fmt: skip
            for deployment in queue.objects(self.store, DEPLOYMENTS):
                if not deployment["metadata"].get("deletionTimestamp"):
                    self._reconcile_deployment(deployment)
            for replicaset in queue.objects(self.store, REPLICASETS):
                if not replicaset["metadata"].get("deletionTimestamp"):
                    self._reconcile_replicaset(replicaset)
            for pod in queue.objects(self.store, PODS):
                if not (pod.get("status") or {}).get("phase"):
                    self._run_pod(pod)
            for extra in self.extras:
                extra()

    def _create(self, kind_key: KindKey, obj: Object, namespace: str) -> Object:
        group, plural = kind_key
        rtype = self.registry.lookup(group, "v1", plural)
        assert rtype is not None, plural
        return self.store.write(kind_key, stamp_created(rtype, obj, namespace))

    # Deployments

    def _reconcile_deployment(self, deployment: Object) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        template = spec.get("template") or {}
        desired, pod_hash = int(spec.get("replicas", 1)), template_hash(template)
        owned = [
            rs
            for rs in self.store.items(REPLICASETS, meta["namespace"])
            if controller_uid(rs) == meta["uid"]
        ]
        current = next((rs for rs in owned if _labels(rs).get(HASH_LABEL) == pod_hash), None)
        if current is None:
            current = self._create_replicaset(deployment, pod_hash, desired)
        for rs in owned:
            want = desired if rs is current else 0
            if (rs.get("spec") or {}).get("replicas") != want:
                self._scale(rs, want)
        self._update_deployment_status(deployment, current)
        name = current["metadata"]["name"]
        record_revision(self.store, meta["namespace"], meta["name"], name)
        old = [rs for rs in owned if rs["metadata"]["name"] != name]
        for rs in surplus_replicasets(old, int(spec.get("revisionHistoryLimit", 10))):
            request_deletion(self.store, self.registry, REPLICASETS, rs)

    def _create_replicaset(self, deployment: Object, pod_hash: str, replicas: int) -> Object:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        labels = {**(template.get("metadata") or {}).get("labels", {}), HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        replicaset = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "labels": labels,
                "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas)},
                "ownerReferences": [controller_ref(deployment)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        }
        return self._create(REPLICASETS, replicaset, meta["namespace"])

    def _scale(self, replicaset: Object, replicas: int) -> None:
        new = copy.deepcopy(replicaset)
        new["spec"]["replicas"] = replicas
        new["metadata"]["generation"] = int(new["metadata"].get("generation") or 1) + 1
        self.store.write(REPLICASETS, new)

    def _update_deployment_status(self, deployment: Object, current: Object) -> None:
        meta = deployment["metadata"]
        owned = [
            rs
            for rs in self.store.items(REPLICASETS, meta["namespace"])
            if controller_uid(rs) == meta["uid"]
        ]
        total = {
            k: sum(int((rs.get("status") or {}).get(k) or 0) for rs in owned)
            for k in ("replicas", "readyReplicas", "availableReplicas")
        }
        fresh = self.store.get(REPLICASETS, meta["namespace"], current["metadata"]["name"])
        updated = int(((fresh or current).get("status") or {}).get("replicas") or 0)
        status = {
            **total,
            "updatedReplicas": updated,
            "unavailableReplicas": max(0, total["replicas"] - total["availableReplicas"]),
            "observedGeneration": meta.get("generation", 1),
        }
        status["conditions"] = _conditions(deployment, status)
        _write_if_changed(self.store, DEPLOYMENTS, deployment, _with_status(deployment, status))

    # ReplicaSets

    def _reconcile_replicaset(self, replicaset: Object) -> None:
        meta, spec = replicaset["metadata"], replicaset.get("spec") or {}
        selector = spec.get("selector") or {}
        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            return  # an empty selector would adopt every pod in the namespace
        namespace = self.store.get(NAMESPACES, "", meta["namespace"])
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return  # the namespace is going away: no new pods
        uid = meta["uid"]
        self._claim_pods(replicaset, selector)
        self._scale_pods(replicaset)
        live, ready = self.pods.count_live(uid), self.pods.count_ready(uid)
        status = {
            "replicas": live,
            "fullyLabeledReplicas": live,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": meta.get("generation", 1),
        }
        _write_if_changed(self.store, REPLICASETS, replicaset, _with_status(replicaset, status))

    def _scale_pods(self, replicaset: Object) -> None:
        """Create or delete (newest first) pods to reach spec.replicas."""
        uid = replicaset["metadata"]["uid"]
        missing = int((replicaset.get("spec") or {}).get("replicas", 1)) - self.pods.count_live(uid)
        for _ in range(missing):
            self._create_pod(replicaset)
        if missing >= 0:
            return
        by_age = sorted(
            (facts.pod for facts in self.pods.live(uid)),
            key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]),
        )
        for pod in by_age[missing:]:
            request_deletion(self.store, self.registry, PODS, pod)

    def _claim_pods(self, replicaset: Object, selector: Object) -> None:
        """Orphan the replicaset's pods whose labels stopped matching, adopt matching orphans.

        Its pods already looked at against this very selector are not looked at again (the
        index notes which came under it or changed labels since): a sync costs the changes.
        """
        uid = replicaset["metadata"]["uid"]
        unchecked = self.pods.take_unchecked(uid)
        if self._selectors.get(uid) != selector:  # new, or changed: look at every pod
            unchecked = self.pods.controlled_by(uid)
            self._selectors[uid] = copy.deepcopy(selector)
        selects = compile_label_selector(selector)
        for facts in unchecked:
            if not facts.deleting and not selects(facts.labels):
                self._set_owner(facts.pod, None, uid)
        for facts in self.pods.orphans_in(replicaset["metadata"]["namespace"]):
            if not facts.deleting and selects(facts.labels):
                self._set_owner(facts.pod, replicaset, uid)

    def _set_owner(self, pod: Object, owner: Object | None, uid: str) -> Object:
        new = copy.deepcopy(pod)
        refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if owner is not None:
            refs.append(controller_ref(owner))
        new["metadata"]["ownerReferences"] = refs
        if not refs:
            del new["metadata"]["ownerReferences"]
        return self.store.write(PODS, new)

    def _create_pod(self, replicaset: Object) -> Object:
        template = (replicaset.get("spec") or {}).get("template") or {}
        return self.create_pod(replicaset, template)

    def create_pod(
        self, owner: Object, template: Object, node: str = NODE_NAME, labels: Object | None = None
    ) -> Object:
        """A running pod `<owner>-<suffix>` from a pod template, controlled by `owner`, on
        `node`, with extra `labels` (call under the store lock)."""
        meta, tmeta = owner["metadata"], template.get("metadata") or {}
        name = f"{meta['name']}-{random_suffix()}"
        while self.store.get(PODS, meta["namespace"], name):
            name = f"{meta['name']}-{random_suffix()}"
        pod = {
            "metadata": {
                "name": name,
                "generateName": f"{meta['name']}-",
                "labels": {**copy.deepcopy(tmeta.get("labels") or {}), **(labels or {})},
                "annotations": copy.deepcopy(tmeta.get("annotations") or {}),
                "ownerReferences": [controller_ref(owner)],
            },
            "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": node},
        }
        default_pod(pod)  # the defaults and admission a controller's pod passes through too
        pod["status"] = self._running_status(pod)
        return self._create(PODS, pod, meta["namespace"])

    # Pods

    def _run_pod(self, pod: Object) -> None:
        new = copy.deepcopy(pod)
        new.setdefault("spec", {}).setdefault("nodeName", NODE_NAME)
        new["status"] = self._running_status(new)
        self.store.write(PODS, new)

    def _running_status(self, pod: Object) -> Object:
        now, n = now_rfc3339(), next(self._ips)
        containers = (pod.get("spec") or {}).get("containers") or []
        conditions = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        return {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": f"10.244.{n // 250}.{n % 250 + 1}",
            "startTime": now,
            "qosClass": "BestEffort",
            "conditions": [
                {"type": c, "status": "True", "lastTransitionTime": now} for c in conditions
            ],
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
                if isinstance(c, dict)
            ],
        }


def _with_status(obj: Object, status: Object) -> Object:
    """A copy with a new status (metadata copied too: the store writes resourceVersion into it)."""
    return {**obj, "metadata": dict(obj["metadata"]), "status": status}


def _labels(obj: Object) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def _conditions(deployment: Object, status: Object) -> list[Object]:
    """Available/Progressing, keeping old timestamps when nothing changed (stable writes)."""
    available = status["availableReplicas"] >= int(
        (deployment.get("spec") or {}).get("replicas", 1)
    )
    wanted = [
        (
            "Available",
            "True" if available else "False",
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
        ),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    old = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}
    now, result = now_rfc3339(), []
    for kind, state, reason in wanted:
        previous = old.get(kind)
        if previous and previous.get("status") == state and previous.get("reason") == reason:
            result.append(previous)
        else:
            result.append(
                {
                    "type": kind,
                    "status": state,
                    "reason": reason,
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                }
            )
    return result
