"""Triggering: the timer's side effects — read pods and SecurityEvents, create the due events.

Each ping re-derives everything from the cluster (no state of our own): the pods, and every
SecurityEvent to find each pod's last run, as upstream does. Creating is idempotent: the name is
``tb-<pod>-<due Unix s>``, so a retried ping finds its event already there (409). Because that
name lacks the namespace, a 409 from an event that targets a *different* pod of the same name is
not taken as done: the event is created again under a hashed name that includes the namespace.

The same ping serves Phoenix's interval timer (:mod:`amtd.schedule.intervals`): its names already
hold the namespace and the pod uid, so a 409 from an event about another pod means the name was
taken on purpose; that is logged and counted ``blocked``, never taken as done.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from amtd.kube.api import PODS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ApiError, ConflictError, TransientError
from amtd.model.objects import Object
from amtd.schedule.intervals import (
    IntervalCheck,
    build_interval_manifest,
    check_interval_pod,
    index_interval_runs,
)
from amtd.schedule.timing import (
    TimerCheck,
    build_timer_manifest,
    check_pod,
    index_last_runs,
    make_timer_security_event_name,
)

logger = logging.getLogger(__name__)

TIMER_NAME = "timer"


@dataclass
class TimerReport:
    """What one ping did, for the answer's header and the log."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """``created=1,waiting=3,...`` (stable order)."""
        return ",".join(f"{key}={self.counts[key]}" for key in sorted(self.counts))


def trigger_due_pods(cluster: Cluster, now: datetime, key: bytes = b"") -> TimerReport:
    """Create one SecurityEvent per due pod and timer; TransientError after all if any failed.

    ``key``: the interval timer's hash key (``INTERVAL_TIMER_KEY``)."""
    pods = cluster.list(PODS)
    events = cluster.list(SECURITY_EVENTS)
    last_runs, interval_runs = index_last_runs(events), index_interval_runs(events)
    report = TimerReport()
    for pod in pods:
        checks = (check_pod(pod, last_runs, now), check_interval_pod(pod, interval_runs, now, key))
        for check in checks:
            if check is not None:
                report.counts[act_on_check(cluster, check, report, key)] += 1
    if report.failures:
        raise TransientError(503, "Unavailable", "; ".join(report.failures)[:500])
    return report


def act_on_check(cluster: Cluster, check: TimerCheck, report: TimerReport, key: bytes) -> str:
    """Log the verdict; create the event when due. Returns the count key."""
    if check.status == "invalid":
        logger.warning("timer: %s has an invalid annotation: %s", check.target, check.reason)
        return "invalid"
    if check.status != "due" or check.due_at is None:
        logger.debug("timer: %s %s (%s)", check.target, check.status, check.reason)
        return check.status
    try:
        if isinstance(check, IntervalCheck):
            return create_interval_security_event(cluster, check, check.due_at, key)
        return create_timer_security_event(cluster, check, check.due_at)
    except ApiError as error:
        logger.error("timer: could not create the event for %s: %s", check.target, error)
        report.failures.append(f"{check.target}: {error.message}")
        return "failed"


def create_timer_security_event(cluster: Cluster, check: TimerCheck, due_at: datetime) -> str:
    """Create (or find already created) the due event; ``created`` or ``existing``."""
    name = make_timer_security_event_name(check.target, due_at)
    try:
        cluster.create(SECURITY_EVENTS, build_timer_manifest(check.target, name, TIMER_NAME))
    except ConflictError:
        existing = cluster.find(SECURITY_EVENTS, name) or {}
        if str(check.target) in (existing.get("spec") or {}).get("targets", []):
            logger.info("timer: %s already has %s", check.target, name)
            return "existing"
        name = make_timer_security_event_name(check.target, due_at, with_namespace=True)
        try:
            cluster.create(SECURITY_EVENTS, build_timer_manifest(check.target, name, TIMER_NAME))
        except ConflictError:
            return "existing"
    logger.info("timer: created %s for %s (%s)", name, check.target, check.reason)
    return "created"


def create_interval_security_event(
    cluster: Cluster, check: IntervalCheck, due_at: datetime, key: bytes
) -> str:
    """Create (or find already created) the window's event; ``created``/``existing``/``blocked``."""
    if check.window is None:  # never for a due check; typed so for mypy
        return "invalid"
    manifest: Object = build_interval_manifest(
        check.target, check.uid, check.window, due_at, key=key, ingested_by=TIMER_NAME
    )
    name = manifest["metadata"]["name"]
    try:
        cluster.create(SECURITY_EVENTS, manifest)
    except ConflictError:
        existing = cluster.find(SECURITY_EVENTS, name) or {}
        if str(check.target) in (existing.get("spec") or {}).get("targets", []):
            logger.info("timer: %s already has %s", check.target, name)
            return "existing"
        logger.error("timer: %s is taken by an event about another pod; %s not refreshed",
                     name, check.target)  # fmt: skip
        return "blocked"
    logger.info("timer: created %s for %s (%s)", name, check.target, check.reason)
    return "created"
