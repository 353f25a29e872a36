"""Housekeeping: the sweep's side effects on the cluster (announce, re-request, delete).

The verdicts are :mod:`amtd.schedule.sweeping`'s (pure). Only the matcher signs steps (see
docs/events.md, "Authority"), so the sweep never decides: an undecided SecurityEvent is
``announce``d to the matcher (through the Broker, as its ApiServerSource event would have been),
which decides, signs and records it. Re-requests are rebuilt from the recorded decisions with
the matcher's signatures unchanged (:func:`amtd.decide.triaging.triage_security_event` without a
signer replays, never mints) and go to ``publish`` (the sink), one per SecurityEvent, with the
matcher's deterministic ids, so a repeat is recognised by the executors. Deletions carry a uid
precondition, so a namesake created since the listing is never deleted. Every problem with one
SecurityEvent is logged and counted; the rest of the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime

from amtd.decide.triaging import triage_security_event
from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ApiError, ConflictError, NotFoundError
from amtd.model.actionevents import ActionRequest, SecurityEventRef
from amtd.model.apiserverevents import InvalidEventError
from amtd.model.timestamps import format_time
from amtd.schedule.sweeping import SweepPlan, SweepSettings, plan_sweep

logger = logging.getLogger(__name__)

Publish = Callable[[ActionRequest], None]
Announce = Callable[[SecurityEventRef], None]  # tell the matcher an event awaits its decision


@dataclass
class SweepReport:
    """What one run did; ``failed`` counts API or sink failures (worth a retry)."""

    decided: int = 0  # announced to the matcher, which decides
    rerequested: int = 0
    published: int = 0
    deleted: int = 0
    invalid: int = 0
    failed: int = 0
    deferred: int = 0

    def summary(self) -> str:
        """``decided=1 rerequested=0 ...`` for logs and the answer header."""
        return " ".join(f"{item.name}={getattr(self, item.name)}" for item in fields(self))


def run_sweep(
    cluster: Cluster, settings: SweepSettings, now: datetime, publish: Publish,
    announce: Announce,
) -> SweepReport:  # fmt: skip
    """One sweep: list, judge (pure), then announce, re-request and delete within the bounds."""
    plan = plan_sweep(cluster.list(SECURITY_EVENTS), now, settings)
    report = SweepReport(deferred=plan.deferred)
    stamp = format_time(now)
    for ref in plan.to_decide:
        announce_undecided(ref, announce, report)
    for ref in plan.to_rerequest:
        recover(cluster, ref, stamp, publish, report)
    for ref in plan.to_delete:
        delete_expired(cluster, ref, report)
    log_plan(plan, report)
    return report


def announce_undecided(ref: SecurityEventRef, announce: Announce, report: SweepReport) -> None:
    """Ask the matcher to decide one SecurityEvent; a failure is counted (the next sweep asks)."""
    try:
        announce(ref)
    except Exception as error:  # the sink's failure must not end the sweep
        logger.warning("sweep: SecurityEvent %s not announced: %s", ref.name, error)
        report.failed += 1
        return
    logger.info("sweep: SecurityEvent %s gen %d announced to the matcher", ref.name,
                ref.generation)  # fmt: skip
    report.decided += 1


def recover(
    cluster: Cluster, ref: SecurityEventRef, now: str, publish: Publish, report: SweepReport
) -> None:
    """Re-request one SecurityEvent's recorded, unexecuted steps (signed by the matcher)."""
    try:
        triage = triage_security_event(cluster, ref.name, may_replay=True, now=now)
    except InvalidEventError as error:
        logger.warning("sweep: SecurityEvent %s can never be decided: %s", ref.name, error.detail)
        report.invalid += 1
        return
    except ApiError as error:
        logger.warning("sweep: SecurityEvent %s not recovered now: %s", ref.name, error)
        report.failed += 1
        return
    report.rerequested += triage.outcome == "Redelivered"
    logger.info("sweep: SecurityEvent %s gen %d: %s", ref.name, ref.generation, triage.outcome)
    if triage.request is not None:
        publish_request(triage.request, publish, report)


def publish_request(request: ActionRequest, publish: Publish, report: SweepReport) -> None:
    """Hand one request to the sink; a failure is counted (the next sweep re-requests it)."""
    try:
        publish(request)
    except Exception as error:  # the sink's failure must not end the sweep
        logger.warning("sweep: request for %s not published: %s", request.security_event.name,
                       error)  # fmt: skip
        report.failed += 1
        return
    report.published += 1


def delete_expired(cluster: Cluster, ref: SecurityEventRef, report: SweepReport) -> None:
    """Delete one handled SecurityEvent past retention (that incarnation only)."""
    try:
        cluster.delete(SECURITY_EVENTS, ref.name, uid=ref.uid)
    except (NotFoundError, ConflictError):
        logger.info("sweep: SecurityEvent %s already gone or replaced: not deleted", ref.name)
        return
    except ApiError as error:
        logger.warning("sweep: SecurityEvent %s not deleted now: %s", ref.name, error)
        report.failed += 1
        return
    logger.info("sweep: deleted SecurityEvent %s (handled, past retention)", ref.name)
    report.deleted += 1


def log_plan(plan: SweepPlan, report: SweepReport) -> None:
    """One line per run."""
    logger.info(
        "sweep: %d to decide, %d to re-request, %d expired; %s",
        len(plan.to_decide), len(plan.to_rerequest), len(plan.to_delete), report.summary(),
    )  # fmt: skip
