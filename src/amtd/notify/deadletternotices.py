"""Dead-letter notices: the event that tells notify a dead letter was recorded. Pure.

A dead-letter sink's reply is dropped by Knative (it is not a subscriber's reply), so the
dead-letters function, once it has recorded a dead letter as a Warning Event, posts a notice to
the Broker (``K_SINK``, a SinkBinding): type :data:`NOTICE_TYPE`, naming that Event only. The
Trigger ``notify-dead-letters`` routes it to notify, which reads the Event back and notifies what
it says: a notice is a pointer, never the content, so a forged one can at most repeat a real
dead letter. Its id is the Event's namespace and name: the same dead letter, the same id.

Loops: no notice is made about a dead-lettered notice, and the Trigger has no dead-letter sink.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd.model.texts import clean_text

NOTICE_TYPE = "com.r6security.amtd.deadletter.recorded.v1"
NOTICE_SOURCE = "/amtd/dead-letters"
RECORDER = "amtd-dead-letters"  # the component the dead-letters function writes its Events as
REASON = "DeadLetter"
MAX_MESSAGE_CHARS = 1024


class InvalidNoticeError(ValueError):
    """A notice without a readable Event reference: answered 400."""


@dataclass(frozen=True)
class DeadLetterNotice:
    """The recorded dead letter as notify shows it (from the Event, not the notice)."""

    event_id: str
    namespace: str
    name: str
    kind: str
    involved: str
    message: str
    count: str
    time: str


def is_notice_type(event_type: str) -> bool:
    """Whether a dead letter is itself a notice (then none is made about it)."""
    return event_type == NOTICE_TYPE


def make_notice(manifest: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The notice (attributes, data) about a recorded dead-letter Event's manifest."""
    meta = manifest["metadata"]
    reference = {"namespace": str(meta["namespace"]), "name": str(meta["name"])}
    attributes = {
        "type": NOTICE_TYPE, "source": NOTICE_SOURCE, "subject": reference["name"],
        "id": f"{reference['namespace']}/{reference['name']}",
        "datacontenttype": "application/json",
    }  # fmt: skip
    return attributes, {"event": reference}


def read_notice(data: Any) -> tuple[str, str]:
    """``(namespace, name)`` of the Event a notice names; InvalidNoticeError otherwise."""
    reference = data.get("event") if isinstance(data, Mapping) else None
    namespace = reference.get("namespace") if isinstance(reference, Mapping) else None
    name = reference.get("name") if isinstance(reference, Mapping) else None
    if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
        raise InvalidNoticeError("data.event needs namespace and name")
    return namespace, name


def confirm_notice(
    event_id: str, reference: tuple[str, str], found: Mapping[str, Any] | None
) -> DeadLetterNotice | str:
    """The notice as the Event found confirms it, or why it does not (gone, not ours)."""
    namespace, name = (clean_text(part, 253) for part in reference)
    if found is None:
        return f"Event {namespace}/{name} does not exist"
    source = (found.get("source") or {}).get("component")
    if found.get("reason") != REASON or source != RECORDER:
        return f"Event {namespace}/{name} is not a dead letter recorded by {RECORDER}"
    involved = found.get("involvedObject") or {}
    return DeadLetterNotice(
        event_id=clean_text(event_id, 512), namespace=namespace, name=name,
        kind=clean_text(str(involved.get("kind", "")), 63),
        involved=clean_text(str(involved.get("name", "")), 253),
        message=clean_text(str(found.get("message", "")), MAX_MESSAGE_CHARS),
        count=str(found.get("count", 1)),
        time=clean_text(str(found.get("lastTimestamp") or ""), 40),
    )  # fmt: skip
