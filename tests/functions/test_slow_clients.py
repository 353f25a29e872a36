"""Slow clients over real sockets: a function served by ``functions-framework`` cuts off requests
whose head or body trickles in, within ``AMTD_READ_TIMEOUT_S``, and keeps answering its probes
while they try (gunicorn's threaded worker would otherwise hold a thread per trickler forever).
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from amtd.edge.workers import DEFAULT_READ_TIMEOUT_S, TIMEOUT_ENV, read_timeout_s
from support.functions import serve_function

TIMEOUT_S = 1.5
TRICKLE_FOR_S = 8.0  # how long a trickler keeps sending when nobody stops it
PAUSE_S = 0.25
ENV = {"INGEST_TOKEN": "slow-token", "AMTD_READ_TIMEOUT_S": str(TIMEOUT_S), "THREADS": "4"}
BODY_HEAD = (
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Authorization: Bearer slow-token\r\nContent-Length: 4096\r\n\r\n"
)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """ingest-falco as its own process, with a short read deadline and few threads."""
    with serve_function("ingest-falco", ENV) as url:
        yield int(url.rsplit(":", 1)[1])


def trickle(port: int, data: bytes, results: list[tuple[int, float]]) -> None:
    """Send ``data`` a byte at a time; record (status or 0 when cut off, seconds it took)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=TRICKLE_FOR_S + 2) as connection:
        for byte in data:
            readable, _, _ = select.select([connection], [], [], PAUSE_S)
            if readable or time.monotonic() - started > TRICKLE_FOR_S:
                break
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
        results.append((read_status(connection), time.monotonic() - started))


def read_status(connection: socket.socket) -> int:
    """The answer's status code, 0 when the connection closed without one."""
    try:
        answer = connection.recv(64)
    except OSError:
        return 0
    parts = answer.split(b" ", 2)
    return int(parts[1]) if answer.startswith(b"HTTP/") and len(parts) > 1 else 0


def time_liveness(port: int) -> float:
    """Seconds until the liveness probe is answered 200."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=TRICKLE_FOR_S + 2) as connection:
        connection.sendall(b"GET /health/liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_status(connection) == 200
    return time.monotonic() - started


def start_tricklers(
    port: int, requests: list[bytes]
) -> tuple[list[threading.Thread], list[tuple[int, float]]]:
    """One thread per trickling request, started."""
    results: list[tuple[int, float]] = []
    threads = [threading.Thread(target=trickle, args=(port, data, results)) for data in requests]
    for thread in threads:
        thread.start()
    return threads, results


def test_ten_trickling_clients_neither_starve_the_probe_nor_outlast_the_deadline(
    port: int,
) -> None:
    slow_heads = [BODY_HEAD.encode()] * 5
    slow_bodies = [BODY_HEAD.encode() + b"x" * 4096] * 5
    threads, results = start_tricklers(port, slow_heads + slow_bodies)
    time.sleep(0.3)  # every trickler has connected and holds (or waits for) a thread
    assert time_liveness(port) < TIMEOUT_S + 1.5
    for thread in threads:
        thread.join()
    assert len(results) == 10
    assert all(status in (0, 408) for status, _ in results), results
    assert all(took < TIMEOUT_S + 1.5 for _, took in results), results


def test_a_trickling_body_is_answered_408(port: int) -> None:
    head = BODY_HEAD.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=TRICKLE_FOR_S) as connection:
        connection.sendall(head)  # the head in one piece, then the body too slowly
        started = time.monotonic()
        while not select.select([connection], [], [], PAUSE_S)[0]:
            connection.sendall(b"x")
            assert time.monotonic() - started < TIMEOUT_S + 1.5, "the body was never cut off"
        answer = read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"RequestTimeout"' in answer


def read_answer(connection: socket.socket) -> bytes:
    """The whole answer: the head and as many body bytes as Content-Length says (TCP splits)."""
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := connection.recv(4096)):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    declared = re.search(rb"(?i)content-length: *(\d+)", head)
    length = int(declared[1]) if declared else 0
    while len(body) < length and (chunk := connection.recv(4096)):
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_prompt_request_on_the_same_server_is_unaffected(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(BODY_HEAD.replace("4096", "2").encode() + b"{}")
        status = read_status(connection)
    assert status not in (0, 408)  # the body arrived: whatever the alert's fate, not a timeout


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.5", 2.5), ("", DEFAULT_READ_TIMEOUT_S), ("0", DEFAULT_READ_TIMEOUT_S),
     ("-3", DEFAULT_READ_TIMEOUT_S), ("soon", DEFAULT_READ_TIMEOUT_S),
     ("inf", DEFAULT_READ_TIMEOUT_S), ("nan", DEFAULT_READ_TIMEOUT_S)],
)  # fmt: skip
def test_the_read_timeout_setting(value: str, expected: float) -> None:
    assert read_timeout_s({TIMEOUT_ENV: value}) == expected
