"""Kept-alive HTTP/1.1 connections on the stand-in (amtd_stack.serving.KeepAliveHandler).

Raw sockets and http.client against a real stand-in: one connection serves many requests, a
body the app leaves unread does not desynchronise it, streamed answers are chunked, HTTP/1.0
and ``Connection: close`` end the connection, malformed requests get a 4xx, and a stopped
server cuts the connections it kept open.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from amtd_stack.apiserver import ApiServer, start_apiserver

AUTH = {"Authorization": "Bearer test"}


@pytest.fixture
def connection(apiserver: ApiServer) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection to the stand-in."""
    opened = http.client.HTTPConnection(apiserver.host, apiserver.port, timeout=30)
    yield opened
    opened.close()


def fetch(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """(status, response, body) of one request on ``connection``."""
    connection.request(method, path, body=body, headers=AUTH)
    response = connection.getresponse()
    return response.status, response, response.read()


def exchange(apiserver: ApiServer, request: bytes) -> bytes:
    """Send raw bytes on a new connection; everything received until the server closes it."""
    with socket.create_connection((apiserver.host, apiserver.port), timeout=30) as raw:
        raw.sendall(request)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    return received


def test_one_connection_serves_many_requests(connection: http.client.HTTPConnection) -> None:
    status, response, _ = fetch(connection, "GET", "/api/v1/namespaces/default")
    first = connection.sock
    assert (status, response.will_close) == (200, False)
    for _ in range(3):
        status, response, _ = fetch(connection, "GET", "/api/v1/namespaces/default")
        assert (status, response.will_close) == (200, False)
    assert connection.sock is first  # never reconnected


def test_an_unread_body_does_not_break_the_next_request(
    connection: http.client.HTTPConnection,
) -> None:
    body = json.dumps({"filler": "x" * 100_000}).encode()
    status, _, _ = fetch(connection, "POST", "/no/such/path", body=body)
    assert status == 404  # answered without reading the body
    status, _, answer = fetch(connection, "GET", "/api/v1/namespaces/default")
    assert status == 200
    assert json.loads(answer)["metadata"]["name"] == "default"


def test_a_streamed_answer_is_chunked_and_the_connection_goes_on(
    connection: http.client.HTTPConnection,
) -> None:
    path = "/api/v1/namespaces?watch=true&timeoutSeconds=0"  # the current objects, then the end
    status, response, body = fetch(connection, "GET", path)
    assert status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    names = {json.loads(line)["object"]["metadata"]["name"] for line in body.splitlines()}
    assert {"default", "kube-system"} <= names
    assert fetch(connection, "GET", "/version")[0] == 200


def test_http_1_0_and_connection_close_end_the_connection(apiserver: ApiServer) -> None:
    for request in (
        b"GET /version HTTP/1.0\r\n\r\n",
        b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        received = exchange(apiserver, request)  # returns only because the server closed
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"200"
        assert json.loads(body)["major"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NONSENSE\r\n\r\n",
        b"GET /version HTTP/2.0\r\n\r\n",
        b"GET /version HTTP/1.1\r\nno colon\r\n\r\n",
    ],
)
def test_malformed_requests_get_a_4xx(apiserver: ApiServer, request_bytes: bytes) -> None:
    received = exchange(apiserver, request_bytes)
    status = int(received.split(b" ", 2)[1])
    assert 400 <= status < 500


def test_stopping_cuts_the_connections_kept_open() -> None:
    server = start_apiserver()
    try:
        kept = http.client.HTTPConnection(server.host, server.port, timeout=30)
        assert fetch(kept, "GET", "/version")[0] == 200
    finally:
        server.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        fetch(kept, "GET", "/version")  # a stopped server answers nothing more
    kept.close()
