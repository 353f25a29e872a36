"""Publishing: send CloudEvents to the function's sink (``K_SINK``), as a Knative source does.

A Knative reply carries one event; a function that must emit several (the sweeper) posts them to the
sink a SinkBinding injects: ``K_SINK`` (the Broker's URL) and ``K_CE_OVERRIDES`` (extensions to add
to every event, as Knative's SinkBinding sets them). Events go out in binary mode; any 2xx is
accepted, any other answer or no answer is a :class:`PublishError` (the caller decides whether to
retry).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from amtd.edge.tracing import current_trace_extensions

if TYPE_CHECKING:  # pydantic models: the dead-letters function publishes without loading them
    from amtd.model.actionevents import ActionRequest

SINK_ENV = "K_SINK"
OVERRIDES_ENV = "K_CE_OVERRIDES"
TIMEOUT_S = 10.0


class PublishError(Exception):
    """The sink did not accept an event."""


@dataclass(frozen=True)
class Sink:
    """Where events go and the extensions every event gets."""

    url: str
    extensions: Mapping[str, str] = field(default_factory=dict)


def read_sink(env: Mapping[str, str]) -> Sink | None:
    """The sink from ``K_SINK`` / ``K_CE_OVERRIDES``; None when no sink is bound (pure).

    Raises ValueError when ``K_CE_OVERRIDES`` is not ``{"extensions": {name: value}}``.
    """
    url = env.get(SINK_ENV, "").strip()
    if not url:
        return None
    return Sink(url, read_overrides(env.get(OVERRIDES_ENV, "")))


def read_overrides(text: str) -> dict[str, str]:
    """The extensions of a ``K_CE_OVERRIDES`` value (pure)."""
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError(f"{OVERRIDES_ENV} is not JSON") from None
    extensions = document.get("extensions") if isinstance(document, dict) else None
    if not isinstance(extensions, dict):
        raise ValueError(f'{OVERRIDES_ENV} must be {{"extensions": {{...}}}}')
    return {str(name): str(value) for name, value in extensions.items()}


def publish_event(sink: Sink, attributes: Mapping[str, str], data: Any) -> None:
    """POST one CloudEvent (binary mode) to the sink, with the current span's trace context
    unless ``attributes`` carry one; PublishError unless it answers 2xx."""
    event = CloudEvent({**current_trace_extensions(), **attributes, **sink.extensions}, data)
    headers, body = to_binary(event)
    try:
        answer = requests.post(sink.url, data=body, headers=dict(headers), timeout=TIMEOUT_S)
    except requests.RequestException as error:
        raise PublishError(f"{sink.url} unreachable: {error}") from None
    if not 200 <= answer.status_code < 300:
        detail = answer.text[:200].strip()
        raise PublishError(f"{sink.url} answered {answer.status_code}: {detail}")


def publish_action_request(sink: Sink, request: ActionRequest, source: str) -> str:
    """One ``action.requested`` event to the sink, with the matcher's id (executors deduplicate
    by step, so a re-published request does nothing twice); returns the id."""
    from amtd.model.actionevents import to_request_attributes  # only its callers load pydantic

    attributes = {**to_request_attributes(request), "source": source}
    publish_event(sink, attributes, request.model_dump(by_alias=True, mode="json"))
    return attributes["id"]
