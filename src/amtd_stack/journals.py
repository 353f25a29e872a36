"""Journals: thread-safe, append-only records of what a component did, for tests and inspection.

The API stand-in journals its requests, the broker its delivery attempts and each source the
events it emitted; readers take snapshots while other threads keep appending.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

Entry = TypeVar("Entry")


class Journal(Generic[Entry]):
    """A thread-safe, append-only list of entries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []

    def append(self, entry: Entry) -> None:
        """Record one entry."""
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[Entry]:
        """A copy of the entries so far, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
