"""CloudEvents over HTTP for the broker: parse either mode, encode binary, read attributes.

Data is kept as the sender's bytes so the broker forwards payloads untouched (the SDK's default
unmarshaller would parse and re-serialise JSON). The SDK invents ``time`` when it is missing; the
broker must not add attributes the sender did not set, so an invented ``time`` is removed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http

REQUIRED_ATTRIBUTES = ("id", "source", "type")
STRUCTURED = "application/cloudevents"


class EventError(ValueError):
    """An HTTP message that is not a valid CloudEvent (the broker answers 400)."""


def is_cloudevent_message(headers: Mapping[str, str]) -> bool:
    """True when headers mark a CloudEvent: ``ce-specversion`` or a cloudevents content type."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return "ce-specversion" in lowered or content_type(lowered).startswith(STRUCTURED)


def content_type(lowered: Mapping[str, str]) -> str:
    """The media type of a lower-cased header mapping, without parameters."""
    return lowered.get("content-type", "").split(";")[0].strip().lower()


def parse_event(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Parse a binary or structured CloudEvent; raise EventError naming what is wrong."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if content_type(lowered).startswith("application/cloudevents-batch"):
        raise EventError("batched CloudEvents are not accepted")
    structured = read_structured(lowered, body)
    declared = set(structured) if structured is not None else binary_attribute_names(lowered)
    missing = [name for name in ("specversion", *REQUIRED_ATTRIBUTES) if name not in declared]
    if missing:
        raise EventError(f"not a CloudEvent: missing {', '.join(missing)}")
    try:
        event = from_http(lowered, body, data_unmarshaller=lambda raw: raw)
    except GenericException as error:
        raise EventError(f"not a CloudEvent: {error}") from error
    if "time" not in declared:
        del event["time"]
    if structured is not None:
        event.data = structured_data(structured)
    return event


def read_structured(lowered: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
    """The JSON object of a structured-mode message, or None for binary mode."""
    if not content_type(lowered).startswith(STRUCTURED):
        return None
    try:
        document = json.loads(body)
    except ValueError as error:
        raise EventError(f"structured CloudEvent is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise EventError("structured CloudEvent must be a JSON object")
    return document


def binary_attribute_names(lowered: Mapping[str, str]) -> set[str]:
    """Attribute names a binary-mode message declares in ``ce-`` headers."""
    return {name[3:] for name in lowered if name.startswith("ce-")}


def structured_data(document: Mapping[str, Any]) -> bytes | None:
    """The payload bytes of a structured event, as a binary-mode body would carry them."""
    if "data_base64" in document:
        return decode_b64(document["data_base64"])
    if "data" not in document or document["data"] is None:
        return None
    data = document["data"]
    if isinstance(data, str) and not is_json_type(document.get("datacontenttype")):
        return data.encode()
    return json.dumps(data).encode()


def decode_b64(text: Any) -> bytes:
    """Decode ``data_base64``; EventError when it is not base64."""
    try:
        return base64.b64decode(str(text), validate=True)
    except binascii.Error as error:
        raise EventError(f"data_base64 is not base64: {error}") from error


def is_json_type(media_type: Any) -> bool:
    """True for an absent content type (JSON by default) or any ``*json`` media type."""
    return media_type is None or "json" in str(media_type).split(";")[0].lower()


def encode_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body; header values are strings, the body is bytes."""
    headers, body = to_binary(event, data_marshaller=marshal_data)
    return {name: str(value) for name, value in headers.items()}, as_bytes(body)


def marshal_data(data: Any) -> bytes | None:
    """Bytes pass through; text is UTF-8; anything else is JSON."""
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data).encode()


def as_bytes(body: Any) -> bytes:
    """Normalise an SDK body (None, str or bytes) to bytes."""
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else bytes(body)


def event_attributes(event: CloudEvent) -> dict[str, str]:
    """All context attributes as strings, the form Trigger filters compare."""
    return {name: str(value) for name, value in event.get_attributes().items()}


def copy_event(
    event: CloudEvent, changes: Mapping[str, str] | None = None, remove: tuple[str, ...] = ()
) -> CloudEvent:
    """A new event with attributes changed or removed; data shared, no invented ``time``."""
    attributes = {k: v for k, v in event.get_attributes().items() if k not in remove}
    attributes.update(changes or {})
    copied = CloudEvent(attributes, event.data)
    if "time" not in attributes:
        del copied["time"]
    return copied
