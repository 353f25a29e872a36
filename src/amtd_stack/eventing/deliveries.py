"""Delivery specs and destinations as Knative defines them, plus the retry rules (pure logic).

``spec.delivery`` is parsed once at start (bad durations or policies refuse to start naming the
field); the retry decision and backoff arithmetic are pure so they can be tested table-driven.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd_stack.errors import ManifestError

# Knative's kncloudevents retries these besides "no response" and any 5xx.
RETRYABLE_STATUSES = frozenset({404, 408, 409, 429})
BACKOFF_POLICIES = frozenset({"linear", "exponential"})
DEFAULT_BACKOFF_S = 0.2
DEFAULT_TIMEOUT_S = 30.0
DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
UNIT_SECONDS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1}


class SpecError(ManifestError):
    """A manifest field the stack refuses; ``field`` is its path."""


@dataclass(frozen=True)
class Destination:
    """A Knative Destination: an object reference, a URI, or a reference plus a relative URI."""

    uri: str = ""
    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""

    @property
    def is_ref(self) -> bool:
        """True when the destination names an object rather than only a URI."""
        return bool(self.kind)

    def describe(self) -> str:
        """Human-readable form for logs and errors."""
        if not self.is_ref:
            return self.uri
        return f"{self.kind} {self.namespace}/{self.name} ({self.api_version}){self.uri}"


@dataclass(frozen=True)
class DeliverySpec:
    """Knative ``delivery``: retries after the first attempt, backoff, per-attempt timeout, DLS."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay_s: float = DEFAULT_BACKOFF_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    dead_letter_sink: Destination | None = None


def parse_duration(text: Any, field: str) -> float:
    """ISO-8601 duration (weeks, days, hours, minutes, seconds; decimals allowed) to seconds."""
    match = DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        problem = f"{text!r} is not an ISO-8601 duration like PT0.5S (no years or months)"
        raise SpecError(field, problem)
    return sum(UNIT_SECONDS[unit] * float(v) for unit, v in match.groupdict().items() if v)


def parse_destination(spec: Any, namespace: str, field: str) -> Destination:
    """Parse ``{ref: {apiVersion, kind, name, namespace?}}`` and/or ``{uri}`` (pure)."""
    if not isinstance(spec, Mapping) or not (spec.get("ref") or spec.get("uri")):
        raise SpecError(field, "must hold 'ref' or 'uri'")
    uri = spec.get("uri") or ""
    ref = spec.get("ref")
    if not isinstance(uri, str):
        raise SpecError(f"{field}.uri", "must be a string")
    if ref is None:
        return Destination(uri=uri)
    if not isinstance(ref, Mapping) or not all(ref.get(k) for k in ("apiVersion", "kind", "name")):
        raise SpecError(f"{field}.ref", "must hold apiVersion, kind and name")
    if uri and "://" in uri:
        raise SpecError(f"{field}.uri", "must be a relative path when 'ref' is set")
    return Destination(
        uri=uri,
        api_version=str(ref["apiVersion"]),
        kind=str(ref["kind"]),
        name=str(ref["name"]),
        namespace=str(ref.get("namespace") or namespace),
    )


def parse_delivery(spec: Any, namespace: str, field: str) -> DeliverySpec | None:
    """Parse a ``delivery`` block; None when absent (pure)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise SpecError(field, "must be a mapping")
    retry = spec.get("retry", 0)
    if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
        raise SpecError(f"{field}.retry", f"must be a non-negative integer, got {retry!r}")
    policy = spec.get("backoffPolicy", "exponential")
    if policy not in BACKOFF_POLICIES:
        raise SpecError(f"{field}.backoffPolicy", f"must be linear or exponential, got {policy!r}")
    sink = spec.get("deadLetterSink")
    return DeliverySpec(
        retry=retry,
        backoff_policy=policy,
        backoff_delay_s=parse_optional_duration(spec, "backoffDelay", DEFAULT_BACKOFF_S, field),
        timeout_s=parse_optional_duration(spec, "timeout", DEFAULT_TIMEOUT_S, field),
        dead_letter_sink=None
        if sink is None
        else parse_destination(sink, namespace, f"{field}.deadLetterSink"),
    )


def parse_optional_duration(spec: Mapping[str, Any], key: str, default: float, field: str) -> float:
    """The duration at ``spec[key]`` in seconds, or ``default`` when absent (pure)."""
    value: Any = spec.get(key)
    if value is None:
        return default
    return parse_duration(value, f"{field}.{key}")


def compute_backoff(spec: DeliverySpec, retry_number: int) -> float:
    """Delay before retry ``retry_number`` (1-based): delay*n (linear) or delay*2^n (pure)."""
    if spec.backoff_policy == "linear":
        return spec.backoff_delay_s * retry_number
    return spec.backoff_delay_s * 2.0**retry_number


def is_retryable(status: int | None) -> bool:
    """True for no response (None), any 5xx, and 404/408/409/429, as Knative retries (pure)."""
    return status is None or status >= 500 or status in RETRYABLE_STATUSES


def select_delivery(trigger: DeliverySpec | None, broker: DeliverySpec | None) -> DeliverySpec:
    """The Trigger's delivery when set, else the Broker's, else no retries (pure)."""
    return trigger or broker or DeliverySpec()
