"""batch/v1 Jobs: the server's selector and pod labels on create, and a controller making pods.

No containers run, so a Job's pods are Running at once and stay Running: a Job never completes
or fails here (`status.active` counts its pods; `succeeded`/`failed` stay 0) and
`kubectl wait --for=condition=complete` times out. The controller keeps `parallelism` pods
(capped by `completions`) and none while `spec.suspend` is true; a deleted pod is replaced.
Pods carry a controller ownerReference to the Job, so garbage collection removes them with it.
The admission helpers are pure; `JobController.reconcile` writes to the store.
"""

from __future__ import annotations

from amtd.model.objects import Object

from .deleting import request_deletion
from .storing import KindKey
from .workloads import Workloads
from .workqueues import PODS, controller_uid

JOBS: KindKey = ("batch", "jobs")
UID_LABEL = "batch.kubernetes.io/controller-uid"
NAME_LABEL = "batch.kubernetes.io/job-name"
RESTART_POLICIES = ("OnFailure", "Never")


def label_job(job: Object) -> None:
    """What the Job strategy adds on create (in place): the uid selector and the pod labels
    (new and legacy names), unless `spec.manualSelector` is set."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector") is True or "selector" in spec:
        return
    meta = job["metadata"]
    uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
    spec["selector"] = {"matchLabels": {UID_LABEL: uid}}
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    labels = {UID_LABEL: uid, NAME_LABEL: name, "controller-uid": uid, "job-name": name}
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}


def job_causes(job: Object) -> list[dict[str, str]]:
    """422 causes for a Job (after defaulting): a pod template must not restart Always."""
    template_spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    policy = template_spec.get("restartPolicy")
    if policy in RESTART_POLICIES:
        return []
    return [
        {
            "reason": "FieldValueNotSupported",
            "message": f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
            "field": "spec.template.spec.restartPolicy",
        }
    ]


def wanted_pods(spec: Object) -> int:
    """How many pods a Job runs at once: parallelism, capped by completions, 0 if suspended."""
    if spec.get("suspend"):
        return 0
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    return parallelism if completions is None else min(parallelism, int(completions))


class JobController:
    """Reconciles every Job (register `reconcile` in `Workloads.extras`)."""

    def __init__(self, workloads: Workloads) -> None:
        self.workloads = workloads
        self.store = workloads.store

    def reconcile(self) -> None:
        """One pass over the Jobs (under the store lock)."""
        for job in self.store.items(JOBS):
            if not job["metadata"].get("deletionTimestamp"):
                self._reconcile_job(job)

    def _reconcile_job(self, job: Object) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        pods = [
            p
            for p in self.store.items(PODS, meta["namespace"])
            if controller_uid(p) == meta["uid"] and not p["metadata"].get("deletionTimestamp")
        ]
        want = wanted_pods(spec)
        for extra in pods[want:]:
            request_deletion(self.store, self.workloads.registry, PODS, extra)
        pods = pods[:want]
        template = spec.get("template") or {}
        pods += [self.workloads.create_pod(job, template) for _ in range(want - len(pods))]
        self._write_status(job, len(pods))

    def _write_status(self, job: Object, active: int) -> None:
        old = job.get("status") or {}
        status: Object = {
            "active": active,
            "ready": active,  # every pod here is Ready at once
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
        if active or old.get("startTime"):
            status["startTime"] = old.get("startTime") or job["metadata"]["creationTimestamp"]
        if status != old:
            self.store.write(JOBS, {**job, "metadata": dict(job["metadata"]), "status": status})
