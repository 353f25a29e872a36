"""amtd_stack.eventing.connections: deliveries reuse kept-alive connections, but never a stale one.

A real keep-alive WSGI server on loopback records the client port of every request (one port =
one TCP connection).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from amtd_stack.eventing.connections import ConnectionPool, is_dropped, open_connection
from amtd_stack.serving import RunningServer
from support.waiting import wait_for


class Counter:
    """A WSGI app answering 204 and noting the client port of each request."""

    def __init__(self) -> None:
        self.ports: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        self.ports.append(str(environ["REMOTE_PORT"]))
        start_response("204 No Content", [])
        return []


@pytest.fixture
def pool() -> Iterator[ConnectionPool]:
    """A pool, closed at teardown."""
    made = ConnectionPool()
    yield made
    made.close()


@pytest.fixture
def counter() -> Iterator[tuple[Counter, RunningServer]]:
    """A running counting server, stopped at teardown."""
    app = Counter()
    server = RunningServer(app).start()
    yield app, server
    server.stop()


def post(pool: ConnectionPool, url: str) -> int:
    """POST a small body; the status."""
    return pool.post(url, b"{}", {"Content-Type": "application/json"}, timeout_s=10).status


def test_posts_to_one_destination_share_a_connection(
    pool: ConnectionPool, counter: tuple[Counter, RunningServer]
) -> None:
    app, server = counter
    assert [post(pool, f"{server.url}/a"), post(pool, f"{server.url}/b")] == [204, 204]
    assert len(app.ports) == 2 and len(set(app.ports)) == 1


def test_a_connection_idle_too_long_is_not_reused(counter: tuple[Counter, RunningServer]) -> None:
    app, server = counter
    eager = ConnectionPool(max_idle_s=0.0)  # every idle connection is already too old
    try:
        assert [post(eager, server.url), post(eager, server.url)] == [204, 204]
    finally:
        eager.close()
    assert len(set(app.ports)) == 2


def test_a_connection_the_server_closed_is_replaced(pool: ConnectionPool) -> None:
    first_app, second_app = Counter(), Counter()
    first = RunningServer(first_app).start()
    assert post(pool, first.url) == 204
    port = first.port
    first.stop()  # cuts the connection the pool keeps
    second = RunningServer(second_app, port=port).start()
    try:
        assert post(pool, second.url) == 204  # not "connection reset": a new connection
    finally:
        second.stop()
    assert len(first_app.ports) == len(second_app.ports) == 1


def test_is_dropped_sees_a_closed_connection(counter: tuple[Counter, RunningServer]) -> None:
    _, server = counter
    connection = open_connection(("http", "127.0.0.1", server.port), 10)
    try:
        connection.request("POST", "/", body=b"{}")
        assert connection.getresponse().read() == b""
        assert not is_dropped(connection)
        server.stop()
        assert wait_for(lambda: is_dropped(connection), "the server's close to arrive")
    finally:
        connection.close()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "not a url", "http://"])
def test_other_than_http_urls_are_refused(pool: ConnectionPool, url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        post(pool, url)


def test_no_server_is_an_error_not_a_hang(pool: ConnectionPool) -> None:
    gone = RunningServer(Counter())
    url = gone.url
    gone.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        post(pool, url)
