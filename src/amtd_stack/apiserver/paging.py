"""List chunking: ``limit`` and ``continue``, as kubectl (500 a page) and clients page (pure).

A page is cut from the collection ordered by namespace and name; the continue token names the
last object returned, so the next page starts after it. Unlike a real API server, later pages
show the collection as it is then, not as it was when the first page was read (no snapshot);
the resourceVersion of every page is the one of the first.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from amtd.model.objects import Object

from .apierrors import bad_request


@dataclass(frozen=True)
class Page:
    """Which part of a collection a list asks for: at most ``limit`` objects after ``after``."""

    limit: int | None = None
    after: tuple[str, str] | None = None
    rv: str = ""


WHOLE = Page()


def read_page(args: Mapping[str, str]) -> Page:
    """The page a list's query asks for; 400 for a limit or continue token that is not one."""
    text, token = args.get("limit", ""), args.get("continue", "")
    if text and not text.isdigit():
        raise bad_request(f"invalid limit {text[:40]!r}: must be a non-negative integer")
    limit = int(text) if text and int(text) > 0 else None
    if not token:
        return Page(limit)
    try:
        fields = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = (str(fields["after"][0]), str(fields["after"][1]))
        return Page(limit, after, str(fields["rv"]))
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        raise bad_request("continue key is not valid: it was not made by this server") from None


def cut_page(items: Sequence[Object], page: Page, rv: int) -> tuple[list[Object], Object]:
    """The objects of the page and the list's metadata (with ``continue`` when more remain)."""
    start = 0
    if page.after is not None:
        start = next((i for i, obj in enumerate(items) if key_of(obj) > page.after), len(items))
    end = len(items) if page.limit is None else min(len(items), start + page.limit)
    version = page.rv or str(rv)
    metadata: Object = {"resourceVersion": version}
    if end < len(items):
        token = {"rv": version, "after": list(key_of(items[end - 1]))}
        metadata["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
        metadata["remainingItemCount"] = len(items) - end
    return list(items[start:end]), metadata


def key_of(obj: Object) -> tuple[str, str]:
    """Where an object sorts in its collection: namespace, then name."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
