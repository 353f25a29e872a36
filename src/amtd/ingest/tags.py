"""Tags: a tool's alert tags as one rule value, so policies can match them. Pure.

Falco sends ``tags`` as a list, KubeArmor ``Tags`` as a comma string and ``ATags`` as a list.
Rules are maps of strings (amtd.model.rules), so the tags become one value: split at commas,
trimmed, de-duplicated, sorted by code point and joined with ``,`` (``"T1059,container"``).
The same tags always give the same text, whatever order or framing the tool used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amtd.ingest.fields import InvalidFieldError, is_absent

TAGS_KEY = "tags"
SEPARATOR = ","
MAX_TAGS = 64
MAX_TAG_LENGTH = 256


def read_tags(document: Mapping[str, Any], *keys: str) -> str | None:
    """The tags under ``keys`` (each a list of strings or a comma string), joined; None if none."""
    tags: set[str] = set()
    for key in keys:
        tags.update(split_tags(document.get(key), key))
    if len(tags) > MAX_TAGS:
        raise InvalidFieldError(keys[0], f"has more than {MAX_TAGS} tags")
    return SEPARATOR.join(sorted(tags)) or None


def split_tags(value: Any, key: str) -> set[str]:
    """One field's tags; InvalidFieldError naming the item that is not a short string."""
    if is_absent(value):
        return set()
    items = value if isinstance(value, list) else [value]
    tags: set[str] = set()
    for index, item in enumerate(items):
        field = f"{key}[{index}]" if isinstance(value, list) else key
        if not isinstance(item, str):
            raise InvalidFieldError(field, f"must be a string, got {type(item).__name__}")
        parts = {part.strip() for part in item.split(SEPARATOR)} - {""}
        if any(len(part) > MAX_TAG_LENGTH for part in parts):
            raise InvalidFieldError(field, f"has a tag longer than {MAX_TAG_LENGTH} characters")
        tags.update(parts)
    return tags
