"""Build CloudEvent HTTP requests in both modes, as a broker or Falcosidekick sends them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent


def as_binary(attributes: Mapping[str, str], data: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode request."""
    headers, body = to_binary(CloudEvent(dict(attributes), data))
    return dict(headers), body


def as_structured(attributes: Mapping[str, str], data: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of a structured-mode request."""
    headers, body = to_structured(CloudEvent(dict(attributes), data))
    return dict(headers), body


def read_reply(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, str], Any]:
    """Attributes and data of a binary-mode reply (``ce-*`` headers)."""
    attributes = {
        key[3:].lower(): value for key, value in headers.items() if key.lower().startswith("ce-")
    }
    return attributes, json.loads(body) if body else None
