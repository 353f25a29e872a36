"""Fields: reading untrusted JSON documents one field at a time. Pure.

Every alert field is attacker-influenced (Falco's ``output_fields`` too): a process name, a pod
name, a rule name can all be chosen by whoever triggers the alert. The readers here check type and
size and raise :class:`InvalidFieldError` naming the field's path, which the HTTP edge answers as
``400 {"error": "InvalidField", "detail": "<path>: <problem>"}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from amtd.model.texts import UNENCODABLE, find_unencodable

MAX_TEXT_LENGTH = 1024
TRUNCATION_MARK = "…"
# Falco writes "<NA>" for fields it could not resolve; older versions wrote "" or null.
ABSENT_TEXTS = ("", "<NA>")
RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,12}))?(Z|z|[+-]\d{2}:\d{2})$"
)
# Seconds since the epoch beyond year ~5000 are not a real alert time.
MAX_UNIX_SECONDS = 1e11


class InvalidFieldError(ValueError):
    """A field that can never be accepted; ``field`` is its path in the document."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def is_absent(value: Any) -> bool:
    """True for the values tools write when a field has no value."""
    return value is None or (isinstance(value, str) and value in ABSENT_TEXTS)


def read_text(
    document: Mapping[str, Any], key: str, path: str = "", max_length: int = MAX_TEXT_LENGTH
) -> str | None:
    """A string field, or None when absent; InvalidFieldError if it is not a short string."""
    value = document.get(key)
    if is_absent(value):
        return None
    field = f"{path}{key}"
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"must be a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidFieldError(field, f"is longer than {max_length} characters")
    return value


def require_text(
    document: Mapping[str, Any], key: str, path: str = "", max_length: int = MAX_TEXT_LENGTH
) -> str:
    """Like :func:`read_text`, but the field must be there."""
    value = read_text(document, key, path, max_length)
    if value is None:
        raise InvalidFieldError(f"{path}{key}", "is required")
    return value


def read_description(document: Mapping[str, Any], key: str, max_length: int) -> str | None:
    """A free-text field, cut at ``max_length`` (long text is not hostile, just long)."""
    value = document.get(key)
    if is_absent(value):
        return None
    if not isinstance(value, str):
        raise InvalidFieldError(key, f"must be a string, got {type(value).__name__}")
    return shorten(value, max_length)


def shorten(text: str, max_length: int) -> str:
    """The text, cut to ``max_length`` characters with a visible mark when cut."""
    if len(text) <= max_length:
        return text
    return text[: max_length - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def read_object(document: Mapping[str, Any], key: str, path: str = "") -> Mapping[str, Any] | None:
    """A JSON object field, or None when absent."""
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidFieldError(f"{path}{key}", f"must be an object, got {type(value).__name__}")
    return value


def parse_rfc3339(text: str, field: str) -> float:
    """Unix seconds of an RFC 3339 time (nanoseconds allowed, cut to microseconds)."""
    match = RFC3339.match(text)
    if not match:
        raise InvalidFieldError(field, f"{text[:40]!r} is not an RFC 3339 time")
    day, clock, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    micro = f".{(fraction or '0')[:6]}"
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}{micro}{offset}")
        return check_unix_seconds(moment.timestamp(), field)
    except (ValueError, OverflowError):
        raise InvalidFieldError(field, f"{text[:40]!r} is not a valid date and time") from None


def check_unix_seconds(value: Any, field: str) -> float:
    """A plausible Unix time in seconds (a number, finite, from 1970 to year ~5000)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFieldError(field, f"must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_UNIX_SECONDS:
        raise InvalidFieldError(field, f"{value!r} is not a plausible Unix time")
    return seconds


def parse_json(raw: bytes | str, field: str) -> Any:
    """:func:`decode_json`, and every string in it must encode (:func:`check_encodable`)."""
    return check_encodable(decode_json(raw, field), field)


def decode_json(raw: bytes | str, field: str) -> Any:
    """Decode JSON; InvalidFieldError (never another exception) when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise InvalidFieldError(
            field, f"is not valid JSON ({describe_json_error(error)})"
        ) from None


def check_encodable(value: Any, field: str = "body") -> Any:
    """``value`` when every string in it encodes as UTF-8; InvalidFieldError naming the first
    that does not (a lone surrogate such as ``"\\ud800"`` is valid JSON but no valid text)."""
    where = find_unencodable(value, "")
    if where is None:
        return value
    raise InvalidFieldError(field if where == "value" else where, UNENCODABLE)


def describe_json_error(error: Exception) -> str:
    """A short, safe description of a JSON decoding failure."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return type(error).__name__


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
