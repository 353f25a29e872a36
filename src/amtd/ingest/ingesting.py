"""Ingesting: turn parsed alerts into SecurityEvents in the cluster (the side effects of ingest).

A 409 on create means the same alert was already recorded in this dedup window: a duplicate, not
an error. Duplicates are counted in-process and written to the event as the annotation
``amtd.r6security.com/occurrences`` at most once per flush interval per event, so a storm of
repeats costs no API write per repeat. The count is best effort (a lower bound): pending counts
of a process that stops are lost, and a failed flush is only logged.

A name this process saw exist (created, or 409) is remembered for one dedup window on that
connection, so its repeats are duplicates without an API call at all (a storm is bounded by HTTP,
not by the API server). A flush that finds the event deleted forgets the name, so the next
repeat creates it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from amtd.ingest.alerts import (
    Alert,
    Outcome,
    build_event_manifest,
    make_event_name,
    read_window_seconds,
)
from amtd.kube.api import (
    SECURITY_EVENTS,
    ApiError,
    Cluster,
    ConflictError,
    InvalidError,
    NotFoundError,
    TransientError,
    shared_cluster,
)

logger = logging.getLogger(__name__)

OCCURRENCES_ANNOTATION = "amtd.r6security.com/occurrences"
DEFAULT_FLUSH_SECONDS = 30.0
MAX_TRACKED_NAMES = 4096


def read_flush_seconds(env: Mapping[str, str]) -> float:
    """``OCCURRENCES_FLUSH_SECONDS`` (default 30; 0 writes every repeat, for tests)."""
    try:
        value = float(env.get("OCCURRENCES_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS))
    except ValueError:
        return DEFAULT_FLUSH_SECONDS
    return value if value >= 0 else DEFAULT_FLUSH_SECONDS


def connect_cluster() -> Cluster:
    """The shared connection; a client that cannot be configured is a (retried) 503."""
    try:
        return shared_cluster()
    except Exception as error:  # config errors of any kind: the server side is not ready
        raise TransientError(0, "NotConfigured", f"no Kubernetes client: {error}") from None


@dataclass
class OccurrenceCounter:
    """Duplicates seen per SecurityEvent name, not yet written, and the names known to exist on
    the current connection (a new connection starts afresh); thread-safe."""

    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    pending: dict[str, int] = field(default_factory=dict)
    flushed_at: dict[str, float] = field(default_factory=dict)
    known_until: dict[str, float] = field(default_factory=dict)
    known_on: Cluster | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_duplicate(self, name: str, now: float) -> int:
        """Count one repeat; the number to write now (0 = wait, flushed recently)."""
        with self.lock:
            self.pending[name] = self.pending.get(name, 0) + 1
            if now - self.flushed_at.get(name, float("-inf")) < self.flush_seconds:
                return 0
            self.flushed_at[name] = now
            self.forget_old(now)
            return self.pending.pop(name)

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


@dataclass(frozen=True)
class AlertRecorder:
    """How an ingest function records alerts: as ``ingested_by``, repeats counted in ``counter``."""

    ingested_by: str
    counter: OccurrenceCounter

    @classmethod
    def from_env(cls, ingested_by: str, env: Mapping[str, str]) -> AlertRecorder:
        """A recorder whose counter flushes every ``OCCURRENCES_FLUSH_SECONDS``."""
        return cls(ingested_by, OccurrenceCounter(read_flush_seconds(env)))

    def record(self, alert: Alert, received_at: float, env: Mapping[str, str]) -> Outcome:
        """:func:`record_alert` on the shared connection, in the configured dedup window."""
        window = read_window_seconds(env)
        return record_alert(
            connect_cluster(), alert, received_at, window, self.ingested_by, self.counter
        )


def record_alert(
    cluster: Cluster, alert: Alert, received_at: float, window: int, ingested_by: str,
    counter: OccurrenceCounter | None = None,
) -> Outcome:  # fmt: skip
    """Create the alert's SecurityEvent; created, duplicate, or rejected (the API refused it).

    TransientError propagates: the caller answers 503 so the sender retries, and the retry is
    safe because the name is deterministic.
    """
    name = make_event_name(alert, received_at, window)
    if counter is not None and counter.is_known(cluster, name, received_at):
        return record_duplicate(cluster, alert, name, received_at, counter)
    try:
        created = create_event(cluster, alert, name, ingested_by)
    except InvalidError as error:
        return reject_alert(name, error)
    if counter is not None:
        counter.remember(cluster, name, received_at, window)
    if not created:
        return record_duplicate(cluster, alert, name, received_at, counter)
    logger.info("created SecurityEvent %s: %s alert %s (%s) for %s", name, alert.tool,
                alert.rule.get("type"), alert.rule.get("threatLevel"), alert.target)  # fmt: skip
    return Outcome("created", name=name)


def create_event(cluster: Cluster, alert: Alert, name: str, ingested_by: str) -> bool:
    """Create the SecurityEvent; False when it exists already (409: this window's duplicate)."""
    try:
        cluster.create(SECURITY_EVENTS, build_event_manifest(alert, name, ingested_by))
    except ConflictError:
        return False
    return True


def reject_alert(name: str, error: InvalidError) -> Outcome:
    """A 400/422 from the API server rejects the alert; 401/403 (our credentials) propagate."""
    if error.status not in (400, 422):
        raise error
    logger.warning("API server refused SecurityEvent %s: %s", name, error.message)
    return Outcome("rejected", name=name, field="spec", detail=error.message[:500])


def record_duplicate(
    cluster: Cluster, alert: Alert, name: str, received_at: float,
    counter: OccurrenceCounter | None,
) -> Outcome:  # fmt: skip
    """The alert's event exists already (this window): count the repeat, answer duplicate."""
    logger.info("duplicate %s alert %s for %s: %s exists", alert.tool,
                alert.rule.get("type"), alert.target, name)  # fmt: skip
    if counter is not None:
        count = counter.note_duplicate(name, received_at)
        if not add_occurrences(cluster, name, count):
            counter.forget(name)
    return Outcome("duplicate", name=name)


def add_occurrences(cluster: Cluster, name: str, count: int) -> bool:
    """Add ``count`` repeats to the event's occurrences annotation (1 = just the original).

    False when the event turned out to be gone (deleted since), else True (failures are logged).
    """
    if count <= 0:
        return True
    try:
        current = cluster.get(SECURITY_EVENTS, name)
        metadata = current.get("metadata", {})
        seen = read_count(metadata.get("annotations", {}).get(OCCURRENCES_ANNOTATION))
        annotations = {OCCURRENCES_ANNOTATION: str(seen + count)}
        # resourceVersion makes the patch conditional: a concurrent counter's write is not lost
        patch = {"metadata": {"resourceVersion": metadata.get("resourceVersion"),
                              "annotations": annotations}}  # fmt: skip
        cluster.patch(SECURITY_EVENTS, name, patch)
    except NotFoundError:
        logger.info("SecurityEvent %s is gone: %d repeat(s) not counted", name, count)
        return False
    except ApiError as error:
        logger.warning("could not count %d repeat(s) on %s: %s", count, name, error)
    return True


def read_count(text: str | None) -> int:
    """The stored occurrences; 1 (the original alert) when unset or unreadable."""
    try:
        return max(1, int(text or 1))
    except ValueError:
        return 1
