"""ApiServer events: read the CloudEvents a Knative ApiServerSource sends. Pure.

Types are ``dev.knative.apiserver.<mode>.<verb>``: mode ``resource`` carries the whole object in
``data``, mode ``ref`` only ``{kind, namespace, name, apiVersion}`` (no namespace for a
cluster-scoped kind such as SecurityEvent, whose ``namespace`` extension is present but empty).
The matcher re-reads the object either way (an event may be stale), so both modes come out as
the same :class:`Change`. Problems are raised as :class:`InvalidEventError` with a short error
code and a detail naming what is wrong; the HTTP edge answers them 400.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from amtd import API_VERSION, SECURITY_EVENT_KIND
from amtd.model.targets import DNS1123_SUBDOMAIN

TYPE_PREFIX = "dev.knative.apiserver."
MODES = {"resource": "Resource", "ref": "Reference"}
VERBS = ("add", "update", "delete")
MAX_NAME_LENGTH = 253

Mode = Literal["Resource", "Reference"]
Verb = Literal["add", "update", "delete"]


class InvalidEventError(ValueError):
    """An event that can never be handled: ``error`` is a short code, ``detail`` says why."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class ChangeType:
    """What an event type says: the source's mode and the watch verb."""

    mode: Mode
    verb: Verb


@dataclass(frozen=True)
class Change:
    """One object change reported by an ApiServerSource."""

    type: ChangeType
    kind: str
    name: str
    namespace: str
    api_version: str
    obj: dict[str, Any] | None  # Resource mode only: the object as the source saw it

    @property
    def verb(self) -> Verb:
        """``add``, ``update`` or ``delete``."""
        return self.type.verb


def read_change_type(event_type: str) -> ChangeType:
    """Parse ``dev.knative.apiserver.<resource|ref>.<add|update|delete>``."""
    mode, _, verb = event_type.removeprefix(TYPE_PREFIX).partition(".")
    if not event_type.startswith(TYPE_PREFIX) or mode not in MODES or verb not in VERBS:
        raise InvalidEventError(
            "UnsupportedEventType",
            f"type {event_type!r} is not dev.knative.apiserver.<resource|ref>.<add|update|delete>",
        )
    return ChangeType(cast(Mode, MODES[mode]), cast(Verb, verb))


def read_data_object(data: Any) -> dict[str, Any]:
    """The event's data as a JSON object (bytes and text are decoded first)."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidEventError("DataNotJson", "the event's data is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidEventError(
            "DataNotAnObject", f"the event's data must be a JSON object, got {type(data).__name__}"
        )
    return data


def read_change(change_type: ChangeType, attributes: Mapping[str, Any], data: Any) -> Change:
    """Read the object reference (and in Resource mode the object) from an event."""
    body = read_data_object(data)
    where = body.get("metadata") if change_type.mode == "Resource" else body
    fields = where if isinstance(where, dict) else {}
    kind = pick_text(body.get("kind"), attributes.get("kind"))
    if not kind:
        raise InvalidEventError("MissingKind", "neither data.kind nor the kind extension is set")
    return Change(
        type=change_type,
        kind=kind,
        name=check_object_name(pick_text(fields.get("name"), attributes.get("name")), change_type),
        namespace=pick_text(fields.get("namespace"), attributes.get("namespace")),
        api_version=pick_text(body.get("apiVersion"), attributes.get("apiversion")),
        obj=body if change_type.mode == "Resource" else None,
    )


def pick_text(*values: Any) -> str:
    """The first non-empty string among the values, else ``""``."""
    return next((value for value in values if isinstance(value, str) and value), "")


def check_object_name(name: str, change_type: ChangeType) -> str:
    """A Kubernetes object name (it goes into a URL path: no ``/``, no ``..``)."""
    where = "data.metadata.name" if change_type.mode == "Resource" else "data.name"
    if not name:
        raise InvalidEventError("MissingName", f"{where} (or the name extension) is not set")
    if len(name) > MAX_NAME_LENGTH or not DNS1123_SUBDOMAIN.match(name):
        raise InvalidEventError(
            "InvalidName", f"{where} {name[:80]!r} is not a valid Kubernetes object name"
        )
    return name


def is_announcing_undecided(change: Change) -> bool:
    """Resource mode: the object in the event was not yet decided for its spec generation.

    Such an event is the one that asked for the decision, so if the object is decided by the
    time it is handled, the event is a redelivery (the broker retried after the matcher had
    decided: its answer came too late, or never reached the broker) and the recorded steps are
    sent again. Status writes announce decided objects and so never replay.
    """
    if change.obj is None:
        return False
    meta = change.obj.get("metadata")
    status = change.obj.get("status")
    generation = meta.get("generation") if isinstance(meta, dict) else None
    observed = status.get("observedGeneration") if isinstance(status, dict) else None
    return generation is not None and generation != observed


def is_echo_of_decision(change: Change) -> bool:
    """Resource mode, an ``update`` whose object is decided for its spec generation: the echo of
    a status write. Nothing can follow from it (a later spec change announces itself), so the
    matcher drops it without reading; the object it carries is trusted to skip work, never to
    decide (it may be stale or forged)."""
    if change.obj is None or change.verb != "update":
        return False
    status = change.obj.get("status")
    decided = isinstance(status, dict) and bool(status.get("decisions"))
    return decided and not is_announcing_undecided(change)


def to_announcement_attributes(name: str, uid: str, source: str) -> dict[str, str]:
    """Attributes of a Reference-mode ``add`` event about a SecurityEvent, as its ApiServerSource
    would send them (the sweeper's, for an event the source missed: the matcher re-reads it)."""
    return {
        "type": f"{TYPE_PREFIX}ref.add",
        "source": source,
        "id": f"announce/{uid}",
        "subject": name,
        "datacontenttype": "application/json",
        "kind": SECURITY_EVENT_KIND,
        "name": name,
        "apiversion": API_VERSION,
    }


def to_announcement(name: str) -> dict[str, str]:
    """``data`` of that event: the object reference."""
    return {"kind": SECURITY_EVENT_KIND, "name": name, "apiVersion": API_VERSION}
