"""Envelopes: the CloudEvents wrapping of an incoming alert (binary or structured mode). Pure.

Our own reader rather than the SDK's ``from_http``: binary-mode ``ce-*`` header values are
percent-encoded (space, ``"`` and ``%``, CloudEvents HTTP binding) and the SDK does not decode them,
and every malformed envelope must end as an :class:`InvalidFieldError` (a 400), never as another
exception. Raw, unencoded values are tolerated: decoding leaves them as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from amtd.ingest.documents import is_json_type, read_media_type
from amtd.ingest.fields import InvalidFieldError, check_encodable, decode_json, json_type_name

SPEC_VERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "type")
STRUCTURED_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"
MAX_ATTRIBUTE_LENGTH = 2048
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,50}$")


@dataclass(frozen=True)
class Payload:
    """A body to decode: its media type (no parameters) and its bytes."""

    media_type: str
    body: bytes


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent: its attributes (extensions included) and its data as a payload."""

    attributes: Mapping[str, str]
    payload: Payload
    mode: str = field(default="binary")


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Binary mode (a ``ce-specversion`` header) or structured mode (its Content-Type)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    media_type = read_media_type(lowered.get("content-type"))
    return "ce-specversion" in lowered or media_type.startswith("application/cloudevents")


def read_envelope(headers: Mapping[str, str], body: bytes) -> Envelope:
    """Read a CloudEvent in either mode; InvalidFieldError naming the bad attribute."""
    lowered = {key.lower(): value for key, value in headers.items()}
    media_type = read_media_type(lowered.get("content-type"))
    if media_type == BATCH_TYPE:
        raise InvalidFieldError("content-type", "batched CloudEvents are not accepted")
    if "ce-specversion" in lowered:
        return read_binary(lowered, media_type, body)
    return read_structured(body)


def read_binary(headers: Mapping[str, str], media_type: str, body: bytes) -> Envelope:
    """Attributes from ``ce-*`` headers (percent-decoded); the body is the data."""
    attributes = {
        key[3:]: decode_header_value(key, value)
        for key, value in headers.items()
        if key.startswith("ce-") and is_attribute_name(key[3:])
    }
    check_attributes(attributes, "ce-")
    return Envelope(attributes, Payload(media_type or "application/json", body), "binary")


def decode_header_value(key: str, value: str) -> str:
    """Percent-decode a header value (WSGI hands headers over as latin-1 text)."""
    if len(value) > MAX_ATTRIBUTE_LENGTH:
        raise InvalidFieldError(key, f"is longer than {MAX_ATTRIBUTE_LENGTH} characters")
    raw = value.encode("latin-1", errors="replace").decode("utf-8", errors="replace")
    return unquote(raw, errors="replace")


def read_structured(body: bytes) -> Envelope:
    """Attributes and ``data``/``data_base64`` from one JSON object."""
    document = decode_json(body, "body")  # data is checked item by item, once split
    if not isinstance(document, dict):
        raise InvalidFieldError(
            "body", f"must be a CloudEvent object, got {json_type_name(document)}"
        )
    attributes = {
        name: text
        for name, value in document.items()
        if is_attribute_name(name) and (text := read_attribute(name, value)) is not None
    }
    check_attributes(check_encodable(attributes), "")
    media_type = read_media_type(attributes.get("datacontenttype")) or "application/json"
    return Envelope(attributes, Payload(media_type, read_data(document, media_type)), "structured")


def read_attribute(name: str, value: Any) -> str | None:
    """A structured-mode attribute as text (extensions may be booleans or numbers).

    Values that cannot be attributes (objects, arrays, null) are dropped; a required attribute
    dropped this way is then reported missing.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        return None
    if len(text) > MAX_ATTRIBUTE_LENGTH:
        raise InvalidFieldError(name, f"is longer than {MAX_ATTRIBUTE_LENGTH} characters")
    return text


def is_attribute_name(name: str) -> bool:
    """CloudEvents attribute names are ``[a-z0-9]``; others (``event_source``, falcosidekick#1050;
    ``data``) are not attributes and are skipped rather than failing the event."""
    return bool(ATTRIBUTE_NAME.match(name)) and name != "data"


def read_data(document: Mapping[str, Any], media_type: str) -> bytes:
    """The event data as bytes, ready to decode like a plain request body."""
    if "data_base64" in document:
        encoded = document["data_base64"]
        if not isinstance(encoded, str):
            raise InvalidFieldError("data_base64", "must be a base64 string")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidFieldError("data_base64", "is not valid base64") from None
    data = document.get("data")
    if data is None:
        return b""
    if isinstance(data, str) and not is_json_type(media_type):
        return data.encode("utf-8", errors="replace")
    try:
        return json.dumps(data).encode("utf-8")
    except RecursionError:
        raise InvalidFieldError("data", "is nested too deeply") from None


def check_attributes(attributes: Mapping[str, str], prefix: str) -> None:
    """The context attributes every CloudEvent must carry."""
    version = attributes.get("specversion")
    if version != SPEC_VERSION:
        shown = (version or "")[:20]
        raise InvalidFieldError(f"{prefix}specversion", f"must be {SPEC_VERSION}, got {shown!r}")
    for name in REQUIRED_ATTRIBUTES:
        if not attributes.get(name):
            raise InvalidFieldError(f"{prefix}{name}", "is required and must not be empty")
