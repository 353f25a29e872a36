"""The campaign over real sockets: the served functions (processes started by the stack), raw
HTTP/1.1 requests with lone surrogates, API-path names, chunked and trickling bodies. Every
answer is counted (``campaign: <function>/sockets ...``); none may be a 5xx, a trickling body is
answered 408 or cut off within the read deadline, and every function still answers its liveness
probe afterwards.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from amtd_stack.running.stack import Stack
from support.functions import ROOT

from .conftest import record_answer

TOKEN = "campaign-socket-token"
READ_TIMEOUT_S = 1.0  # AMTD_READ_TIMEOUT_S: a trickling request is cut off after it
ENV: dict[str, dict[str, str]] = {
    name: {"INGEST_TOKEN": TOKEN}
    for name in ("ingest-falco", "ingest-kubearmor", "ingest-alertmanager")
}
ENV["*"] = {"AMTD_READ_TIMEOUT_S": str(READ_TIMEOUT_S)}
CE = (
    "Ce-Specversion: 1.0\r\nCe-Id: c-1\r\nCe-Source: /campaign\r\n"
    "Ce-Type: com.r6security.amtd.action.requested.v1\r\nContent-Type: application/json\r\n"
)
NAMES = ["\\ud800", "?watch=true", "../../api/v1/namespaces/kube-system/pods/x", "a/../b", "%2e%2e"]
BODIES = [
    *('{"securityEvent": {"name": "' + name + '", "uid": "u", "generation": 1}, "steps": []}'
      for name in NAMES),
    '{"output": "\\ud800", "priority": "Critical", "rule": "\\udfff"}',
    '[{"PodName": "\\ud800", "NamespaceName": "shop"}]',
]  # fmt: skip
TRICKLE_S = 0.3  # between two bytes of a slow body: its 8 bytes would take 2.4 s
PROMPT_S = READ_TIMEOUT_S + 1.0  # cut off by then, or it was not cut off by the deadline


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real functions served on loopback ports."""
    with Stack(ROOT, tmp_path_factory.mktemp("sockets"), env_overrides=ENV) as running:
        yield running


def exchange(port: int, head: str, chunks: list[bytes], pause_s: float = 0.0) -> int:
    """Send a raw request (head, then the body pieces) and read the status; 0 = cut off."""
    with socket.create_connection(("127.0.0.1", port), timeout=4) as connection:
        try:
            connection.sendall(head.encode())
            for chunk in chunks:
                time.sleep(pause_s)
                connection.sendall(chunk)
            answer = connection.recv(64)
        except OSError:  # closed or timed out on a slow client: cut off, not answered
            return 0
    parts = answer.split(b" ", 2)
    return int(parts[1]) if answer.startswith(b"HTTP/") and len(parts) > 1 else 0


def trickle(port: int, head: str, chunks: list[bytes]) -> tuple[int, float]:
    """Send the head, then the body pieces slowly until the function answers or closes: the
    status (0 = closed without one) and how long the request lasted."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=4) as connection:
        connection.sendall(head.encode())
        for chunk in chunks:
            if select.select([connection], [], [], TRICKLE_S)[0]:
                break  # answered (or closed) while the body was still coming
            try:
                connection.sendall(chunk)
            except OSError:
                break
        try:
            answer = connection.recv(64)
        except OSError:
            answer = b""
    parts = answer.split(b" ", 2)
    status = int(parts[1]) if answer.startswith(b"HTTP/") and len(parts) > 1 else 0
    return status, time.monotonic() - started


def requests_for(port: int, body: str) -> list[tuple[str, list[bytes], float]]:
    """The same body as a plain, a chunked and a trickled POST."""
    data = body.encode()
    auth = f"Authorization: Bearer {TOKEN}\r\nAmtdtoken: {TOKEN}\r\n"
    plain = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{CE}{auth}Connection: close\r\n"
    chunked = [b"%x\r\n%s\r\n" % (len(data[i : i + 7]), data[i : i + 7])
               for i in range(0, len(data), 7)] + [b"0\r\n\r\n"]  # fmt: skip
    return [
        (f"{plain}Content-Length: {len(data)}\r\n\r\n", [data], 0.0),
        (f"{plain}Transfer-Encoding: chunked\r\n\r\n", chunked, 0.0),
        (f"{plain}Content-Length: {len(data)}\r\n\r\n", [data[i : i + 1] for i in range(8)],
         TRICKLE_S),  # only 8 of its bytes ever come
    ]  # fmt: skip


def test_hostile_requests_over_real_sockets_never_get_a_5xx(stack: Stack) -> None:
    failures = []
    for name, process in sorted(stack.functions.items()):
        for body in BODIES:
            for head, chunks, pause in requests_for(process.port, body)[:2]:
                status = exchange(process.port, head, chunks, pause)
                if status:
                    record_answer(f"{name}/sockets", status)
                if status >= 500:
                    failures.append((name, head.splitlines()[-1], body, status))
    assert failures == []
    assert_alive(stack)


def test_a_trickling_body_is_408_or_cut_off_by_the_read_deadline(stack: Stack) -> None:
    late = []
    for name, process in sorted(stack.functions.items()):
        head, chunks, _ = requests_for(process.port, BODIES[0])[2]
        status, took = trickle(process.port, head, chunks)
        if status:
            record_answer(f"{name}/sockets", status)
        if status not in (0, 408) or took > PROMPT_S:
            late.append((name, status, round(took, 2)))
    assert late == []
    assert_alive(stack)


def assert_alive(stack: Stack) -> None:
    """Every function still answers its liveness probe."""
    for name, process in stack.functions.items():
        head = "GET /health/liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert exchange(process.port, head, []) == 200, f"{name} no longer answers liveness"
