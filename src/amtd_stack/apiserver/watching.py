"""Watch streams: newline-delimited JSON events, resourceVersion semantics, selector transitions.

resourceVersion unset or "0": synthetic ADDED events for current objects, then live events.
A given resourceVersion: every event after it, or one ERROR event (410 Expired) when the bounded
history no longer reaches back that far. An object that starts/stops matching the selectors is
reported as ADDED/DELETED, as the real server does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from amtd.model.objects import Object

from .apierrors import bad_request, failure_status
from .handling import Api, Target, view
from .selectors import is_selected, parse_field_selector, parse_label_selector
from .storing import StoreEvent

DEFAULT_TIMEOUT_S = 1800.0
POLL_S = 1.0  # upper bound on one wait, so deadlines and server stop are noticed
Render = Callable[[Object, str], Object]  # (object, event type) -> what goes into "object"


@dataclass
class WatchSpec:
    """A parsed watch request."""

    target: Target
    since: int | None  # None: start with synthetic ADDED events
    timeout_s: float
    selected: Callable[[Mapping[str, Any]], bool]


def parse_watch(target: Target, query: Mapping[str, str]) -> WatchSpec:
    """Check parameters before any bytes are sent; 400 on bad values."""
    labels = parse_label_selector(query.get("labelSelector"))
    fields = parse_field_selector(query.get("fieldSelector"), target.rtype.kind)
    raw_rv = query.get("resourceVersion") or "0"
    try:
        since = int(raw_rv)
        timeout_s = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
    except ValueError as exc:
        raise bad_request(f"invalid watch parameter: {exc}") from None
    return WatchSpec(
        target=target,
        since=since or None,
        timeout_s=max(0.0, timeout_s),
        selected=lambda obj: is_selected(obj, labels, fields) and _in_scope(target, obj),
    )


def _in_scope(target: Target, obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata", {})
    if target.namespace and meta.get("namespace", "") != target.namespace:
        return False
    return not target.name or meta.get("name") == target.name


def _event_type(spec: WatchSpec, event: StoreEvent) -> str:
    """The type this watcher sees for a store event, or "" to skip it."""
    if event.kind_key != spec.target.kind_key:
        return ""
    now = spec.selected(event.obj)
    before = event.old is not None and spec.selected(event.old)
    if event.type == "DELETED":
        return "DELETED" if before else ""
    if event.type == "ADDED" or not before:
        return "ADDED" if now else ""
    return "MODIFIED" if now else "DELETED"


def _line(event_type: str, obj: Object) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def stream_watch(api: Api, spec: WatchSpec, render: Render | None = None) -> Iterator[bytes]:
    """Yield event lines until the timeout, the server stopping, or history expiring."""
    rtype = spec.target.rtype
    draw: Render = render or (lambda obj, _type: view(rtype, obj))
    with api.store.lock:
        cursor = api.store.rv if spec.since is None else spec.since
        initial = [] if spec.since else api.store.items(spec.target.kind_key)
    for obj in initial:
        if spec.selected(obj):
            yield _line("ADDED", draw(obj, "ADDED"))
    deadline = time.monotonic() + spec.timeout_s
    while not api.store.closed and (remaining := deadline - time.monotonic()) > 0:
        events = api.store.wait_events(cursor, min(remaining, POLL_S))
        if events is None:
            yield _line(
                "ERROR", failure_status(410, f"too old resource version: {cursor}", "Expired")
            )
            return
        if not events:
            yield b""  # idle tick: lets the server notice a client that went away
        for event in events:
            cursor = event.rv
            if event_type := _event_type(spec, event):
                yield _line(event_type, draw(event.obj, event_type))
