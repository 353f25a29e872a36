"""Intervals: Phoenix's interval timer, made stateless. Pure.

A pod opts in with ``interval-timer.amtd.r6security.com/enabled: "true"`` and
``.../config: "30m-45m"``; it gets one SecurityEvent ``{type: interval-timer, threatLevel: info,
source: IntervalTimerTrigger}`` at a random point of the window after its last refresh. Phoenix
keeps that point in memory; here nothing is kept, so every timer replica (and every retry) must
arrive at the same point: it is a keyed hash of the pod uid and the last refresh, which is the
later of the pod's creationTimestamp and its newest interval-timer SecurityEvent. Each window thus
has one due time, and the event name is derived from it, so a second create is a 409.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from amtd.model.objects import Object
from amtd.model.securityeventmanifests import build_security_event_manifest
from amtd.model.targets import Target
from amtd.model.timestamps import format_time, parse_time
from amtd.schedule.timing import TimerCheck, index_last_runs, name_opted_in_pod

INTERVAL_ENABLED_ANNOTATION = "interval-timer.amtd.r6security.com/enabled"
INTERVAL_CONFIG_ANNOTATION = "interval-timer.amtd.r6security.com/config"
DUE_AT_ANNOTATION = "interval-timer.amtd.r6security.com/due-at"
INTERVAL_SOURCE = "IntervalTimerTrigger"
INTERVAL_TYPE = "interval-timer"
INTERVAL_RULE = {"type": INTERVAL_TYPE, "threatLevel": "info", "source": INTERVAL_SOURCE}
KEY_ENVIRONMENT = "INTERVAL_TIMER_KEY"
CONFIG_PATTERN = re.compile(r"([0-9]{1,7})([smh])-([0-9]{1,7})([smh])\Z")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
MIN_SECONDS = 1
MAX_SECONDS = 366 * 86400  # a year: far enough for any refresh, far from datetime's end
MAX_CONFIG_LENGTH = 40
NAME_PREFIX = "interval-timer-"


@dataclass(frozen=True)
class IntervalWindow:
    """``min-max`` in whole seconds, ``MIN_SECONDS <= minimum <= maximum <= MAX_SECONDS``."""

    minimum: int
    maximum: int

    def __str__(self) -> str:
        return f"{format_go_duration(self.minimum)}-{format_go_duration(self.maximum)}"


@dataclass(frozen=True)
class IntervalCheck(TimerCheck):
    """A timer verdict with what the due SecurityEvent is made of."""

    uid: str = ""
    window: IntervalWindow | None = None


def parse_interval_config(text: str) -> IntervalWindow:
    """``<n><s|m|h>-<n><s|m|h>`` (``30m-45m``, ``1800s-2700s``); ValueError saying what is wrong."""
    spec = text.strip()
    if len(spec) > MAX_CONFIG_LENGTH:
        raise ValueError(
            f"{INTERVAL_CONFIG_ANNOTATION} is longer than {MAX_CONFIG_LENGTH} characters"
        )
    match = CONFIG_PATTERN.match(spec)
    if match is None:
        raise ValueError(f"interval {spec[:40]!r} is not <n><s|m|h>-<n><s|m|h> (e.g. 30m-45m)")
    minimum = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    maximum = int(match.group(3)) * UNIT_SECONDS[match.group(4)]
    if minimum < MIN_SECONDS or maximum > MAX_SECONDS:
        raise ValueError(f"interval {spec!r} must lie between {MIN_SECONDS}s and {MAX_SECONDS}s")
    if minimum > maximum:
        raise ValueError(f"interval {spec!r}: the minimum is larger than the maximum")
    return IntervalWindow(minimum, maximum)


def format_go_duration(seconds: int) -> str:
    """Go's ``Duration.String`` for whole seconds (``30m0s``, ``1h0m0s``), as Phoenix writes it."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def read_interval_key(environ: Mapping[str, str]) -> bytes:
    """The hash key (``INTERVAL_TIMER_KEY``); empty when unset: due times are then predictable."""
    return environ.get(KEY_ENVIRONMENT, "").encode("utf-8")


def keyed_digest(key: bytes, *parts: str) -> bytes:
    """HMAC-SHA256 over the parts, separated so that no two part lists read the same."""
    return hmac.new(key, "\x00".join(parts).encode("utf-8"), hashlib.sha256).digest()


def pick_due_time(window: IntervalWindow, uid: str, last_run: datetime, key: bytes) -> datetime:
    """The window's one due time: ``last run + minimum + offset``, the offset from the hash."""
    start = last_run.replace(microsecond=0)
    digest = keyed_digest(key, "due", uid, str(int(start.timestamp())))
    offset = int.from_bytes(digest[:8], "big") % (window.maximum - window.minimum + 1)
    return start + timedelta(seconds=window.minimum + offset)


def index_interval_runs(security_events: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """Per ``namespace/pod``: the creation time of its newest interval-timer SecurityEvent."""
    return index_last_runs(security_events, INTERVAL_SOURCE)


def check_interval_pod(
    pod: Mapping[str, Any], last_runs: Mapping[str, datetime], now: datetime, key: bytes
) -> IntervalCheck | None:
    """The pod's verdict; None when it did not opt in (no ``enabled`` annotation)."""
    metadata = pod.get("metadata") or {}
    target = name_opted_in_pod(metadata, INTERVAL_ENABLED_ANNOTATION)
    if target is None:
        return None
    if metadata.get("deletionTimestamp"):
        return IntervalCheck(target, "terminating", "pod is terminating")
    annotations = metadata["annotations"]
    try:
        return decide_interval(target, metadata, annotations, last_runs.get(str(target)), now, key)
    except (ValueError, OverflowError, TypeError) as error:
        return IntervalCheck(target, "invalid", str(error))


def decide_interval(
    target: Target, metadata: Mapping[str, Any], annotations: Mapping[str, Any],
    last_event: datetime | None, now: datetime, key: bytes,
) -> IntervalCheck:  # fmt: skip
    """Enabled, configured and due? ValueError for a bad annotation or pod."""
    enabled = annotations[INTERVAL_ENABLED_ANNOTATION]
    if enabled == "false":
        return IntervalCheck(target, "disabled", f"{INTERVAL_ENABLED_ANNOTATION} is false")
    if enabled != "true":
        raise ValueError(f"{INTERVAL_ENABLED_ANNOTATION} {str(enabled)[:40]!r} is not true/false")
    if not isinstance(annotations.get(INTERVAL_CONFIG_ANNOTATION), str):
        raise ValueError(f"{INTERVAL_CONFIG_ANNOTATION} is missing")
    window = parse_interval_config(annotations[INTERVAL_CONFIG_ANNOTATION])
    uid, created = metadata.get("uid"), parse_time(metadata.get("creationTimestamp"))
    if not isinstance(uid, str) or not uid or created is None:
        raise ValueError("pod has no uid or creationTimestamp")
    # a recreated pod of the same name starts afresh, not from its predecessor's last event
    last_run = max(created, last_event) if last_event is not None else created
    due_at = pick_due_time(window, uid, last_run, key)
    if due_at > now:
        return IntervalCheck(target, "waiting", f"next run at {due_at.isoformat()}", due_at)
    return IntervalCheck(target, "due", f"due since {due_at.isoformat()}", due_at, uid, window)


def make_interval_security_event_name(
    target: Target, uid: str, due_at: datetime, key: bytes
) -> str:
    """``interval-timer-<pod>-<digest>``: one name per pod and window, valid however long."""
    seconds = str(int(due_at.timestamp()))
    digest = keyed_digest(key, "name", target.namespace, target.name, uid, seconds).hex()[:16]
    return f"{NAME_PREFIX}{target.name[:200].rstrip('-.')}-{digest}"


def build_interval_manifest(
    target: Target, uid: str, window: IntervalWindow, due_at: datetime, *, key: bytes,
    ingested_by: str,
) -> Object:  # fmt: skip
    """The SecurityEvent Phoenix's interval timer writes (rule and description)."""
    name = make_interval_security_event_name(target, uid, due_at, key)
    description = f"Interval-based timer trigger (interval: {window}) for pod {target}"
    return build_security_event_manifest(
        name, target, INTERVAL_RULE, description, ingested_by=ingested_by,
        annotations={DUE_AT_ANNOTATION: format_time(due_at)},
    )  # fmt: skip
