"""Ingesting: turn parsed alerts into SecurityEvents in the cluster (the side effects of ingest).

A 409 on create means the same alert was already recorded in this dedup window: a duplicate, not
an error. Ingest can only add: it creates SecurityEvents and never changes one (RBAC grants it no
patch or update on them), so an alert cannot rewrite the spec of an event already decided.
Duplicates are counted in-process and written at most once per flush interval per event as a
new core/v1 Event (reason ``Repeated``, ``count`` = the repeats since the last flush) about the
SecurityEvent, which ``kubectl describe securityevent`` lists; a storm of repeats costs no API
write per repeat. The count is best effort (a lower bound): pending counts of a process that
stops are lost, and a failed flush is only logged.

A name this process saw exist (created, or 409) is remembered for one dedup window on that
connection, so its repeats are duplicates without an API call at all (a storm is bounded by HTTP,
not by the API server). A flush that finds the event deleted forgets the name, so the next
repeat creates it again.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from amtd.ingest.alerts import (
    Alert,
    IngestOutcome,
    build_alert_manifest,
    make_security_event_name,
    read_window_seconds,
)
from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ApiError, ConflictError, InvalidError, NotFoundError
from amtd.kube.connecting import connect_cluster
from amtd.kube.events import (
    CLUSTER_SCOPED_EVENTS_NAMESPACE,
    make_kube_event,
    refer_to_security_event,
)
from amtd.model.objects import Object
from amtd.model.timestamps import format_unix_time

logger = logging.getLogger(__name__)

REPEATED_REASON = "Repeated"
DEFAULT_FLUSH_SECONDS = 30.0
MAX_TRACKED_NAMES = 4096


def read_flush_seconds(env: Mapping[str, str]) -> float:
    """``OCCURRENCES_FLUSH_SECONDS`` (default 30; 0 writes every repeat, for tests)."""
    try:
        value = float(env.get("OCCURRENCES_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS))
    except ValueError:
        return DEFAULT_FLUSH_SECONDS
    return value if value >= 0 else DEFAULT_FLUSH_SECONDS


@dataclass(frozen=True)
class Repeats:
    """Repeats of one SecurityEvent's alert to write as one Event: how many, first and last
    arrival (Unix s), and a key no other flush of any process shares (the Event's name)."""

    count: int
    first_at: float
    last_at: float
    key: str


@dataclass
class OccurrenceCounter:
    """Duplicates seen per SecurityEvent name, not yet written, and the names known to exist on
    the current connection (a new connection starts afresh); thread-safe."""

    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    pending: dict[str, tuple[int, float]] = field(default_factory=dict)  # (count, first arrival)
    flushed_at: dict[str, float] = field(default_factory=dict)
    known_until: dict[str, float] = field(default_factory=dict)
    known_on: Cluster | None = None
    instance: str = field(default_factory=lambda: secrets.token_hex(8))
    flushes: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_duplicate(self, name: str, now: float) -> Repeats | None:
        """Count one repeat; the repeats to write now (None = wait, flushed recently)."""
        with self.lock:
            count, since = self.pending.get(name, (0, now))
            self.pending[name] = (count + 1, min(since, now))
            if now - self.flushed_at.get(name, float("-inf")) < self.flush_seconds:
                return None
            self.flushed_at[name] = now
            self.forget_old(now)
            count, since = self.pending.pop(name)
            return Repeats(count, since, now, f"{self.instance}/{next(self.flushes)}")

    def forget_old(self, now: float) -> None:
        """Bound memory: drop names whose window has long passed (their counts are stale)."""
        if len(self.flushed_at) <= MAX_TRACKED_NAMES:
            return
        horizon = now - 10 * self.flush_seconds
        for name in [name for name, at in self.flushed_at.items() if at < horizon]:
            self.flushed_at.pop(name, None)
            self.pending.pop(name, None)

    def is_known(self, cluster: Cluster, name: str, now: float) -> bool:
        """Whether ``name`` was seen to exist on this connection within its dedup window."""
        with self.lock:
            return self.known_on is cluster and self.known_until.get(name, 0.0) > now

    def remember(self, cluster: Cluster, name: str, now: float, window: float) -> None:
        """``name`` exists on ``cluster``: trust that for one dedup window from ``now``."""
        with self.lock:
            if self.known_on is not cluster:
                self.known_on, self.known_until = cluster, {}
            elif len(self.known_until) >= MAX_TRACKED_NAMES:  # bound memory: expired ones go
                kept = {known: until for known, until in self.known_until.items() if until > now}
                self.known_until = kept if len(kept) < MAX_TRACKED_NAMES else {}
            self.known_until[name] = now + window

    def forget(self, name: str) -> None:
        """``name`` no longer exists: its next repeat must create it again."""
        with self.lock:
            self.known_until.pop(name, None)


def annotate_nothing() -> Mapping[str, str]:
    """No annotations of the caller's: the default of :class:`AlertRecorder`."""
    return {}


@dataclass(frozen=True)
class AlertRecorder:
    """How an ingest function records alerts: as ``ingested_by``, repeats counted in ``counter``;
    ``annotate`` gives the annotations of the work in progress (the edge's trace context)."""

    ingested_by: str
    counter: OccurrenceCounter
    annotate: Callable[[], Mapping[str, str]] = annotate_nothing

    @classmethod
    def from_env(
        cls, ingested_by: str, env: Mapping[str, str],
        annotate: Callable[[], Mapping[str, str]] = annotate_nothing,
    ) -> AlertRecorder:  # fmt: skip
        """A recorder whose counter flushes every ``OCCURRENCES_FLUSH_SECONDS``."""
        return cls(ingested_by, OccurrenceCounter(read_flush_seconds(env)), annotate)

    def record(self, alert: Alert, received_at: float, env: Mapping[str, str]) -> IngestOutcome:
        """:func:`record_alert` on the shared connection, in the configured dedup window."""
        window = read_window_seconds(env)
        return record_alert(
            connect_cluster(), alert, received_at, window, self.ingested_by, self.counter,
            annotations=self.annotate(),
        )  # fmt: skip


def record_alert(
    cluster: Cluster, alert: Alert, received_at: float, window: int, ingested_by: str,
    counter: OccurrenceCounter | None = None, annotations: Mapping[str, str] | None = None,
) -> IngestOutcome:  # fmt: skip
    """Create the alert's SecurityEvent (with ``annotations`` too); created, duplicate, or
    rejected (the API refused it).

    TransientError propagates: the caller answers 503 so the sender retries, and the retry is
    safe because the name is deterministic.
    """
    name = make_security_event_name(alert, received_at, window)
    if counter is not None and counter.is_known(cluster, name, received_at):
        return record_duplicate(cluster, alert, name, received_at, counter, ingested_by)
    try:
        created = create_security_event(cluster, alert, name, ingested_by, annotations)
    except InvalidError as error:
        return reject_alert(name, error)
    if counter is not None:
        counter.remember(cluster, name, received_at, window)
    if not created:
        return record_duplicate(cluster, alert, name, received_at, counter, ingested_by)
    logger.info("created SecurityEvent %s: %s alert %s (%s) for %s", name, alert.tool,
                alert.rule.get("type"), alert.rule.get("threatLevel"), alert.target)  # fmt: skip
    return IngestOutcome("created", name=name)


def create_security_event(
    cluster: Cluster, alert: Alert, name: str, ingested_by: str,
    annotations: Mapping[str, str] | None = None,
) -> bool:  # fmt: skip
    """Create the SecurityEvent; False when it exists already (409: this window's duplicate)."""
    try:
        cluster.create(SECURITY_EVENTS, build_alert_manifest(alert, name, ingested_by, annotations))
    except ConflictError:
        return False
    return True


def reject_alert(name: str, error: InvalidError) -> IngestOutcome:
    """A 400/422 from the API server rejects the alert; 401/403 (our credentials) propagate."""
    if error.status not in (400, 422):
        raise error
    logger.warning("API server refused SecurityEvent %s: %s", name, error.message)
    return IngestOutcome("rejected", name=name, field="spec", detail=error.message[:500])


def record_duplicate(
    cluster: Cluster, alert: Alert, name: str, received_at: float,
    counter: OccurrenceCounter | None, ingested_by: str,
) -> IngestOutcome:  # fmt: skip
    """The alert's event exists already (this window): count the repeat, answer duplicate.

    Logged at debug level only: a storm repeats one alert thousands of times, and each repeat is
    counted already (the Repeated Event, the duplicate metric)."""
    logger.debug("duplicate %s alert %s for %s: %s exists", alert.tool,
                alert.rule.get("type"), alert.target, name)  # fmt: skip
    if counter is not None:
        repeats = counter.note_duplicate(name, received_at)
        if repeats is not None and not record_repeats(cluster, name, repeats, ingested_by):
            counter.forget(name)
    return IngestOutcome("duplicate", name=name)


def record_repeats(cluster: Cluster, name: str, repeats: Repeats, component: str) -> bool:
    """Write ``repeats`` as a new Repeated Event; the SecurityEvent is only read (for its uid,
    which ``kubectl describe`` matches Events by).

    False when the SecurityEvent turned out to be gone (deleted since), else True (failures are
    logged).
    """
    try:
        uid = cluster.get(SECURITY_EVENTS, name).get("metadata", {}).get("uid")
        event = build_repeated_event(name, uid, repeats, component)
    except NotFoundError:
        logger.info("SecurityEvent %s is gone: %d repeat(s) not counted", name, repeats.count)
        return False
    except ApiError as error:
        logger.warning("could not count %d repeat(s) on %s: %s", repeats.count, name, error)
        return True
    try:
        cluster.create(EVENTS, event, CLUSTER_SCOPED_EVENTS_NAMESPACE)
    except ApiError as error:
        logger.warning("could not count %d repeat(s) on %s: %s", repeats.count, name, error)
    return True


def build_repeated_event(name: str, uid: str | None, repeats: Repeats, component: str) -> Object:
    """The Event saying SecurityEvent ``name``'s alert came ``count`` more times. Pure."""
    event = make_kube_event(
        refer_to_security_event(name, uid), namespace=CLUSTER_SCOPED_EVENTS_NAMESPACE,
        reason=REPEATED_REASON, key=f"{uid}/{REPEATED_REASON}/{repeats.key}",
        message=f"the alert that created this SecurityEvent came {repeats.count} more time(s)",
        component=component, now=format_unix_time(repeats.last_at),
    )  # fmt: skip
    # count and the first time make `kubectl describe` show "(x<count> over <span>)"
    return {**event, "count": repeats.count, "firstTimestamp": format_unix_time(repeats.first_at)}
