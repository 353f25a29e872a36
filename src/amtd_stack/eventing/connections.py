"""Connections: kept-alive HTTP/1.1 connections for the stack's deliveries (thread-safe).

A new TCP connection per event costs the sender a handshake and the receiving server a new
thread; the broker and the sources reuse idle connections per destination instead, as
Knative's Go clients do. A connection idle for ``max_idle_s`` or more is closed rather than
reused: servers close idle connections on their own schedule (gunicorn after 2 s), and one
closed while a request is on its way would fail a delivery that never reached its subscriber.
"""

from __future__ import annotations

import http.client
import select
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_IDLE_S = 1.0  # well under gunicorn's 2 s keep-alive
MAX_IDLE_PER_ADDRESS = 8  # as many as the broker's delivery workers

Address = tuple[str, str, int]  # scheme, host, port
Idle = tuple[http.client.HTTPConnection, float]  # a connection and when it went idle


@dataclass(frozen=True)
class Answer:
    """A response, read in full: status, headers (names as sent) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class ConnectionPool:
    """Idle connections per (scheme, host, port), most recently used first."""

    def __init__(self, max_idle_s: float = MAX_IDLE_S) -> None:
        self.max_idle_s = max_idle_s
        self._idle: dict[Address, list[Idle]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> Answer:
        """POST once; raises OSError (TimeoutError: no answer in time), HTTPException, ValueError.

        Never retried here: a request that may have reached the server is the caller's to judge.
        """
        address, path = split_url(url)
        connection = self._checkout(address, timeout_s)
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            answer = Answer(response.status, dict(response.getheaders()), response.read())
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._checkin(address, connection)
        return answer

    def close(self) -> None:
        """Close every idle connection (those in use close when their request is done)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def _checkout(self, address: Address, timeout_s: float) -> http.client.HTTPConnection:
        """A fresh idle connection to ``address``, else a new one."""
        now, stale, found = time.monotonic(), [], None
        with self._lock:
            idle = self._idle.get(address, [])
            while idle:
                connection, since = idle.pop()
                if now - since < self.max_idle_s and not is_dropped(connection):
                    found = connection
                    break
                stale.append(connection)
        for connection in stale:
            connection.close()
        if found is None:
            found = open_connection(address, timeout_s)
        elif found.sock is not None:
            found.sock.settimeout(timeout_s)
        return found

    def _checkin(self, address: Address, connection: http.client.HTTPConnection) -> None:
        """Keep a connection for reuse (the oldest idle one goes when there are too many)."""
        with self._lock:
            idle = self._idle.setdefault(address, [])
            idle.append((connection, time.monotonic()))
            extra = idle.pop(0)[0] if len(idle) > MAX_IDLE_PER_ADDRESS else None
        if extra is not None:
            extra.close()


def split_url(url: str) -> tuple[Address, str]:
    """(scheme, host, port) and the path with its query; ValueError for other than http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), path


def open_connection(address: Address, timeout_s: float) -> http.client.HTTPConnection:
    """A new (not yet connected) connection to ``address``."""
    scheme, host, port = address
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout_s)
    return http.client.HTTPConnection(host, port, timeout=timeout_s)


def is_dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (it is readable: EOF or junk)."""
    if connection.sock is None:
        return True
    try:
        readable, _, _ = select.select([connection.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
