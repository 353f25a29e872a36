"""apps/v1 DaemonSets: one pod per Node object whose labels fit the template's nodeSelector.

The stand-in with workload emulation on has one Node (`node-1`, server.py); a Node created
through the API gets its pods too, and a deleted one loses them. A pod whose
`pod-template-generation` label is not the DaemonSet's generation is replaced (what a
RollingUpdate ends with; OnDelete waits for the pod to be deleted). Pods carry a controller
ownerReference, so garbage collection removes them with the DaemonSet. `DaemonSetController`
writes to the store; `wanted_nodes` is pure.
"""

from __future__ import annotations

from amtd.model.objects import Object

from .deleting import request_deletion
from .storing import KindKey
from .workloads import Workloads
from .workqueues import PODS, controller_uid

DAEMONSETS: KindKey = ("apps", "daemonsets")
NODES: KindKey = ("", "nodes")
GENERATION_LABEL = "pod-template-generation"


def wanted_nodes(daemonset: Object, nodes: list[Object]) -> list[str]:
    """The names of the live nodes whose labels carry every nodeSelector pair."""
    template_spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    selector = template_spec.get("nodeSelector") or {}
    return [
        n["metadata"]["name"]
        for n in nodes
        if not n["metadata"].get("deletionTimestamp")
        and all((n["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
    ]


def _is_stale(pod: Object, generation: str, rolling: bool) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return rolling and labels.get(GENERATION_LABEL) != generation


class DaemonSetController:
    """Reconciles every DaemonSet (register `reconcile` in `Workloads.extras`)."""

    def __init__(self, workloads: Workloads) -> None:
        self.workloads = workloads
        self.store = workloads.store

    def reconcile(self) -> None:
        """One pass over the DaemonSets (under the store lock)."""
        nodes = self.store.items(NODES)
        for daemonset in self.store.items(DAEMONSETS):
            if not daemonset["metadata"].get("deletionTimestamp"):
                self._reconcile(daemonset, wanted_nodes(daemonset, nodes))

    def _reconcile(self, daemonset: Object, nodes: list[str]) -> None:
        meta, spec = daemonset["metadata"], daemonset.get("spec") or {}
        generation = str(meta.get("generation", 1))
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "OnDelete"
        kept: dict[str, Object] = {}
        for pod in self.store.items(PODS, meta["namespace"]):
            if controller_uid(pod) != meta["uid"] or pod["metadata"].get("deletionTimestamp"):
                continue
            node = (pod.get("spec") or {}).get("nodeName", "")
            if node in nodes and node not in kept and not _is_stale(pod, generation, rolling):
                kept[node] = pod
            else:
                request_deletion(self.store, self.workloads.registry, PODS, pod)
        template, labels = spec.get("template") or {}, {GENERATION_LABEL: generation}
        for node in nodes:
            if node not in kept:
                kept[node] = self.workloads.create_pod(daemonset, template, node, labels)
        self._write_status(daemonset, len(nodes), generation)

    def _write_status(self, daemonset: Object, count: int, generation: str) -> None:
        status = {
            "currentNumberScheduled": count,
            "desiredNumberScheduled": count,
            "numberAvailable": count,
            "numberMisscheduled": 0,
            "numberReady": count,
            "observedGeneration": int(generation),
            "updatedNumberScheduled": count,
        }
        if status != daemonset.get("status"):
            new = {**daemonset, "metadata": dict(daemonset["metadata"]), "status": status}
            self.store.write(DAEMONSETS, new)
