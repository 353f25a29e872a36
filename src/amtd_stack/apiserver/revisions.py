"""Deployment revisions, as the real deployment controller keeps them for `kubectl rollout`.

Each ReplicaSet of a Deployment carries `deployment.kubernetes.io/revision`; the ReplicaSet of
the current template holds the highest one, and the Deployment carries it too. A template
that comes back (a rollback) moves its old ReplicaSet to a new, highest revision, and the
numbers it had are listed in `deployment.kubernetes.io/revision-history`. The Deployment's
`kubernetes.io/change-cause` is copied to the ReplicaSet it is rolled to. Old ReplicaSets
scaled to zero beyond `spec.revisionHistoryLimit` are deleted, oldest revision first.
`revision_of`, `next_annotations` and `surplus_replicasets` are pure; `record_revision`
writes to the store.
"""

from __future__ import annotations

from amtd.model.objects import Object

from .storing import KindKey, Store

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
DEPLOYMENTS: KindKey = ("apps", "deployments")
REPLICASETS: KindKey = ("apps", "replicasets")


def revision_of(obj: Object) -> int:
    """The revision annotation as a number (0 when missing or malformed)."""
    value = (obj["metadata"].get("annotations") or {}).get(REVISION, "")
    return int(value) if str(value).isdigit() else 0


def next_annotations(current: Object, others: list[Object], cause: str | None) -> dict[str, str]:
    """The annotations the current ReplicaSet should carry, given the Deployment's other ones."""
    annotations = dict(current["metadata"].get("annotations") or {})
    highest = max((revision_of(rs) for rs in others), default=0)
    mine = revision_of(current)
    if mine <= highest or mine == 0:
        if mine:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(mine)])
        annotations[REVISION] = str(highest + 1)
        if cause is not None:
            annotations[CHANGE_CAUSE] = cause
    return annotations


def surplus_replicasets(old: list[Object], limit: int) -> list[Object]:
    """The old, empty ReplicaSets beyond the history limit, oldest revision first."""
    empty = [
        rs
        for rs in old
        if not (rs.get("spec") or {}).get("replicas")
        and not (rs.get("status") or {}).get("replicas")
        and not rs["metadata"].get("deletionTimestamp")
    ]
    empty.sort(key=revision_of)
    return empty[: max(0, len(empty) - limit)]


def _with_annotations(obj: Object, annotations: dict[str, str]) -> Object:
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


def record_revision(store: Store, namespace: str, deployment_name: str, rs_name: str) -> None:
    """Give the current ReplicaSet the highest revision and the Deployment its number (re-read
    from the store: earlier writes in this pass replaced both)."""
    deployment = store.get(DEPLOYMENTS, namespace, deployment_name)
    current = store.get(REPLICASETS, namespace, rs_name)
    if deployment is None or current is None:
        return
    uid = deployment["metadata"]["uid"]
    others = [
        rs
        for rs in store.items(REPLICASETS, namespace)
        if rs is not current
        and any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])
    ]
    cause = (deployment["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
    annotations = next_annotations(current, others, cause)
    if annotations != (current["metadata"].get("annotations") or {}):
        store.write(REPLICASETS, _with_annotations(current, annotations))
    wanted = {**(deployment["metadata"].get("annotations") or {}), REVISION: annotations[REVISION]}
    if wanted != deployment["metadata"].get("annotations"):
        store.write(DEPLOYMENTS, _with_annotations(deployment, wanted))
