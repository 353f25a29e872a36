"""Sweeping: what the periodic sweep does with each SecurityEvent. Pure.

An ApiServerSource sends nothing for changes it did not see (its adapter restarted, a watch gap:
knative/eventing#8675), and a lost ``action.requested`` (retries spent, dead-lettered) leaves steps
that no executor will ever perform. So a PingSource drives the ``sweeper`` function, which judges
every SecurityEvent with :func:`judge_security_event`:

- ``Decide``: its current generation has no decision and it is older than the grace period
  (so the sweep does not race the normal path);
- ``Rerequest``: decided, but steps that need an executor have no execution, and the decision
  is older than the grace period;
- ``Delete``: fully handled (Completed, Unmatched, Failed) and untouched for the retention
  period (Phoenix never cleaned up);
- ``Keep``: anything else.

:func:`plan_sweep` bounds one run (oldest first), so a backlog is worked off over several runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from amtd.model.actionevents import SecurityEventRef, make_action_request
from amtd.model.securityeventreaders import read_ref, read_status
from amtd.model.statuses import derive_phase, is_generation_decided
from amtd.model.timestamps import parse_time

logger = logging.getLogger(__name__)

GRACE_ENV = "SWEEP_GRACE_SECONDS"
RETENTION_ENV = "SWEEP_RETENTION_SECONDS"
MAX_EVENTS_ENV = "SWEEP_MAX_EVENTS"
MAX_DELETIONS_ENV = "SWEEP_MAX_DELETIONS"
FINISHED_PHASES = frozenset({"Completed", "Unmatched", "Failed"})

SweepVerdict = Literal["Decide", "Rerequest", "Delete", "Keep"]


@dataclass(frozen=True)
class SweepSettings:
    """How old is old enough, and how much one run may do."""

    grace: timedelta = timedelta(seconds=30)
    retention: timedelta = timedelta(days=7)
    max_events: int = 100  # decided or re-requested per run
    max_deletions: int = 100


@dataclass(frozen=True)
class Judgement:
    """The verdict on one SecurityEvent, with what the sweep needs to act on it."""

    verdict: SweepVerdict
    ref: SecurityEventRef
    since: datetime | None  # the time the verdict's age is counted from


@dataclass(frozen=True)
class SweepPlan:
    """One run's work, oldest first, and how much was left for later runs."""

    to_decide: list[SecurityEventRef] = field(default_factory=list)
    to_rerequest: list[SecurityEventRef] = field(default_factory=list)
    to_delete: list[SecurityEventRef] = field(default_factory=list)
    deferred: int = 0


def read_sweep_settings(env: Mapping[str, str]) -> SweepSettings:
    """The settings from the environment; an unreadable value keeps its default (logged)."""
    default = SweepSettings()
    grace = read_number(env, GRACE_ENV, default.grace.total_seconds())
    retention = read_number(env, RETENTION_ENV, default.retention.total_seconds())
    return SweepSettings(
        grace=timedelta(seconds=grace),
        retention=timedelta(seconds=retention),
        max_events=int(read_number(env, MAX_EVENTS_ENV, default.max_events)),
        max_deletions=int(read_number(env, MAX_DELETIONS_ENV, default.max_deletions)),
    )


def read_number(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number from ``env[name]``, else ``default``."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        logger.warning("%s=%r is not a non-negative number: using %g", name, text, default)
        return default
    return value


def judge_security_event(obj: dict[str, Any], now: datetime, settings: SweepSettings) -> Judgement:
    """What the sweep does with one SecurityEvent (pure)."""
    meta = obj.get("metadata") or {}
    ref = read_ref(obj)
    created = parse_time(meta.get("creationTimestamp"))
    if meta.get("deletionTimestamp") or not ref.name:
        return Judgement("Keep", ref, created)
    status = read_status(obj)
    if not is_generation_decided(status, ref.generation):
        return Judgement(verdict_after("Decide", created, now, settings.grace), ref, created)
    decided = latest([parse_time(d.decided_at) for d in status.decisions]) or created
    if make_action_request(ref, status.decisions, status.executions) is not None:
        return Judgement(verdict_after("Rerequest", decided, now, settings.grace), ref, decided)
    if derive_phase(status.decisions, status.executions) not in FINISHED_PHASES:
        return Judgement("Keep", ref, decided)
    handled = latest([decided, *(parse_time(e.time) for e in status.executions)])
    if handled is None:  # never delete what cannot be dated
        return Judgement("Keep", ref, None)
    return Judgement(verdict_after("Delete", handled, now, settings.retention), ref, handled)


def verdict_after(
    verdict: SweepVerdict, since: datetime | None, now: datetime, wait: timedelta
) -> SweepVerdict:
    """``verdict`` once ``wait`` has passed since ``since``; an unknown time counts as old."""
    return verdict if since is None or now - since >= wait else "Keep"


def latest(times: Iterable[datetime | None]) -> datetime | None:
    """The latest of the known times."""
    known = [time for time in times if time is not None]
    return max(known) if known else None


def plan_sweep(
    objects: Iterable[dict[str, Any]], now: datetime, settings: SweepSettings
) -> SweepPlan:
    """Judge every SecurityEvent and keep the oldest within the per-run bounds (pure)."""
    judged = [judge_security_event(obj, now, settings) for obj in objects]
    judged.sort(key=lambda item: item.since or datetime.min.replace(tzinfo=now.tzinfo))
    work = [item for item in judged if item.verdict in ("Decide", "Rerequest")]
    chosen = work[: settings.max_events]
    expired = [item.ref for item in judged if item.verdict == "Delete"]
    deferred = len(work) - len(chosen) + max(len(expired) - settings.max_deletions, 0)
    return SweepPlan(
        to_decide=[item.ref for item in chosen if item.verdict == "Decide"],
        to_rerequest=[item.ref for item in chosen if item.verdict == "Rerequest"],
        to_delete=expired[: settings.max_deletions],
        deferred=deferred,
    )
