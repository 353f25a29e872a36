"""PingSource: emit ``dev.knative.sources.ping`` on a cron schedule, or on demand for tests.

The schedule is evaluated with ``croniter`` in the source's timezone; ``fire()`` sends one event
now, so tests never wait for a minute boundary.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloudevents.http import CloudEvent
from croniter import croniter

from amtd_stack.eventing.deliveries import Destination
from amtd_stack.eventing.sources import (
    SOURCES_V1,
    SourceContext,
    build_event,
    parse_extensions,
    parse_sink,
)
from amtd_stack.manifests import Manifest, namespace_of

LOG = logging.getLogger(__name__)
PING_TYPE = "dev.knative.sources.ping"
DEFAULT_SCHEDULE = "* * * * *"


@dataclass(frozen=True)
class PingSourceDefinition:
    """A PingSource as the stack runs it."""

    namespace: str
    name: str
    schedule: str
    timezone: str
    content_type: str | None
    data: bytes | None
    sink: Destination
    extensions: dict[str, str]
    path: Path

    @property
    def source_uri(self) -> str:
        """The CloudEvent ``source`` Knative gives this PingSource."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


def is_pingsource(manifest: Manifest) -> bool:
    """True for a sources.knative.dev/v1 PingSource."""
    return manifest.api_version == SOURCES_V1 and manifest.kind == "PingSource"


def parse_schedule(manifest: Manifest) -> tuple[str, str]:
    """``spec.schedule`` (cron, validated) and ``spec.timezone`` (IANA name, default UTC)."""
    schedule = manifest.spec.get("schedule", DEFAULT_SCHEDULE)
    if not isinstance(schedule, str) or not croniter.is_valid(schedule):
        raise manifest.refuse("spec.schedule", f"{schedule!r} is not a cron schedule")
    timezone = manifest.spec.get("timezone") or "UTC"
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise manifest.refuse("spec.timezone", f"unknown timezone {timezone!r}") from error
    return schedule, str(timezone)


def parse_data(manifest: Manifest) -> bytes | None:
    """``spec.data`` (text) or ``spec.dataBase64`` (decoded), never both."""
    text: Any = manifest.spec.get("data")
    encoded: Any = manifest.spec.get("dataBase64")
    if text is not None and encoded is not None:
        raise manifest.refuse("spec.dataBase64", "set either data or dataBase64, not both")
    if encoded is not None:
        try:
            return base64.b64decode(str(encoded), validate=True)
        except binascii.Error as error:
            raise manifest.refuse("spec.dataBase64", "is not base64") from error
    return None if text is None else str(text).encode()


def parse_pingsource(manifest: Manifest) -> PingSourceDefinition:
    """A PingSourceDefinition; ManifestError naming the file and field."""
    schedule, timezone = parse_schedule(manifest)
    content_type = manifest.spec.get("contentType")
    return PingSourceDefinition(
        namespace=namespace_of(manifest),
        name=manifest.name,
        schedule=schedule,
        timezone=timezone,
        content_type=None if content_type is None else str(content_type),
        data=parse_data(manifest),
        sink=parse_sink(manifest),
        extensions=parse_extensions(manifest),
        path=manifest.path,
    )


def build_ping_event(source: PingSourceDefinition, at: datetime) -> CloudEvent:
    """The CloudEvent a PingSource emits at ``at`` (pure but for the random id)."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source.source_uri,
        "type": PING_TYPE,
        "time": at.isoformat(),
        **({"datacontenttype": source.content_type} if source.content_type else {}),
        **source.extensions,
    }
    return build_event(attributes, source.data)


def next_fire(source: PingSourceDefinition, after: datetime) -> datetime:
    """The next scheduled time strictly after ``after``, in the source's timezone (pure)."""
    local = after.astimezone(ZoneInfo(source.timezone))
    nxt: datetime = croniter(source.schedule, local).get_next(datetime)
    return nxt


class PingSourceRunner:
    """A thread firing one PingSource on its schedule until stopped."""

    def __init__(self, source: PingSourceDefinition, context: SourceContext) -> None:
        self.source = source
        self.context = context
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"pingsource-{source.name}", daemon=True
        )

    def start(self) -> None:
        """Start the schedule."""
        self._thread.start()

    def fire(self) -> CloudEvent:
        """Emit one event now (besides the schedule) and return it."""
        event = build_ping_event(self.source, datetime.now(ZoneInfo(self.source.timezone)))
        self.context.emit(event)
        return event

    def _loop(self) -> None:
        while True:
            now = datetime.now(ZoneInfo(self.source.timezone))
            wait_s = (next_fire(self.source, now) - now).total_seconds()
            if self._stopping.wait(max(wait_s, 0.0)):
                return
            try:
                self.fire()
            except Exception:  # a failed send must not end the schedule
                LOG.exception("pingsource %s could not fire", self.source.name)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the schedule and wait for the thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
