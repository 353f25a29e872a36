"""Texts: making attacker-influenced strings safe to store, show and log. Pure.

JSON may carry a lone surrogate (``"\\ud800"``): valid JSON, but not encodable as UTF-8, so it
fails wherever the text is written (a name hash, the API request, a log line). It is found and
refused at decoding. Control characters (C0, C1, ANSI escapes, bidi overrides) forge log lines and
hide text in ``kubectl describe``: :func:`strip_controls` removes them from text we show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# ANSI escape sequences first (so their parameters go too), then single control characters:
# C0 but tab, DEL, C1, and the bidi embeddings, overrides and isolates (Trojan Source).
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
TRUNCATION_MARK = "…"
UNENCODABLE = "is not valid Unicode (a lone surrogate: cannot be encoded as UTF-8)"
MAX_DEPTH = 64  # deeper than any alert; JSON that deep was refused by the decoder already


def is_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def show_path(path: str, key: str) -> str:
    """``path.key`` with anything unencodable in the key escaped, so the path can be shown."""
    shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{path}.{shown}" if path else shown


def find_unencodable(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The path of the first string (or key) in a decoded JSON value that UTF-8 cannot encode."""
    if isinstance(value, str):
        return None if is_encodable(value) else (path or "value")
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = show_path(path, str(key))
            if not is_encodable(str(key)):
                return where
            found = find_unencodable(item, where, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unencodable(item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
    return None


def strip_controls(text: str) -> str:
    """``text`` without control characters, ANSI escapes, bidi controls or lone surrogates."""
    cleaned = CONTROLS.sub("", ANSI_ESCAPE.sub("", text))
    if is_encodable(cleaned):
        return cleaned
    return cleaned.encode("utf-8", "replace").decode("utf-8")


def clean_text(text: str, max_length: int) -> str:
    """:func:`strip_controls`, then cut to ``max_length`` characters with a visible mark."""
    cleaned = strip_controls(text)
    if len(cleaned) <= max_length:
        return cleaned
    return cleaned[: max_length - len(TRUNCATION_MARK)] + TRUNCATION_MARK
