"""How the edge reads bodies: ``Content-Encoding: gzip``/``deflate`` decoded on every entry point
with the body limit on the inflated size (a bomb is a 413, inflated incrementally), unknown
codings 415; and Falco's own ``http_output``, which sends no credentials header, authenticated by
a ``/t/<token>`` path (byte for byte as Falco sends it, over a real socket).
"""

from __future__ import annotations

import gzip
import json
import socket
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.edge.inflating import InflatedTooLargeError, InvalidEncodingError, inflate
from amtd.edge.responding import MAX_BODY_BYTES
from amtd.kube.api import Cluster
from support.builders import FALCO_ALERT, falco_alert
from support.fixtures import client_fixture, world_fixture
from support.functions import load_function_client, serve_function
from support.ingesting import TOKEN, bearer, security_events

USER = "ingest-falco"
PATH_TOKEN = "f4lc0-direct-path-token"
BOMB = gzip.compress(b"\0" * (10 * 1024 * 1024))  # 10 MB of zeros in about 10 KB
# A real Falco event as http_output posts it (json_output: true, json_include_output_property and
# json_include_tags_property: true).
FALCO_EVENT = falco_alert(uuid=None)


falco = client_fixture("ingest-falco")
cluster = world_fixture(USER, token=True, unset=("INGEST_PATH_TOKEN",))


def post_encoded(client: FlaskClient, body: bytes, encoding: str) -> Any:
    """POST an encoded JSON body with the bearer token."""
    headers = {**bearer(), "Content-Encoding": encoding}
    return client.post("/", data=body, content_type="application/json", headers=headers)


def deflate(data: bytes, wbits: int) -> bytes:
    """zlib-wrapped (15) or raw (-15) deflate."""
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress),
     ("deflate", lambda data: deflate(data, 15)), ("deflate", lambda data: deflate(data, -15))],
)  # fmt: skip
def test_a_compressed_alert_is_ingested(
    falco: FlaskClient, cluster: Cluster, encoding: str, encode: Any
) -> None:
    response = post_encoded(falco, encode(json.dumps(FALCO_ALERT).encode()), encoding)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert [event["spec"]["targets"] for event in security_events(cluster)] == [
        ["shop/cart-6b8f7d9c4-hx2lp"]
    ]


def test_a_gzip_bomb_is_413_without_inflating_it(falco: FlaskClient, cluster: Cluster) -> None:
    tracemalloc.start()
    try:
        response = post_encoded(falco, BOMB, "gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert response.get_json()["error"] == "PayloadTooLarge"
    assert peak < 4 * MAX_BODY_BYTES  # 10 MB inflated would be far beyond
    assert security_events(cluster) == []


def test_inflating_stops_at_the_limit_and_reads_no_further() -> None:
    pieces = [BOMB[i : i + 1024] for i in range(0, len(BOMB), 1024)]
    consumed = []

    def chunks() -> Iterator[bytes]:
        for piece in pieces:
            consumed.append(len(piece))
            yield piece

    with pytest.raises(InflatedTooLargeError):
        inflate(chunks(), "gzip", 1000)
    assert len(consumed) == 1  # the first KiB of the bomb already inflates past 1000 bytes
    assert inflate([gzip.compress(b"a" * 1000)], "gzip", 1000) == b"a" * 1000


def test_concatenated_gzip_members_are_one_body_and_garbage_after_is_refused() -> None:
    assert inflate([gzip.compress(b"[1,") + gzip.compress(b"2]")], "gzip", 100) == b"[1,2]"
    with pytest.raises(InvalidEncodingError):
        inflate([gzip.compress(b"[1]") + b"junk"], "gzip", 100)
    with pytest.raises(InvalidEncodingError):
        inflate([gzip.compress(b"[1]")[:-4]], "gzip", 100)


@pytest.mark.parametrize(
    ("encoding", "body", "status", "error"),
    [("br", b"{}", 415, "UnsupportedEncoding"), ("gzip, gzip", b"{}", 415, "UnsupportedEncoding"),
     ("gzip", b"not gzip at all", 400, "InvalidEncoding")],
)  # fmt: skip
def test_unknown_or_broken_encodings_are_refused(
    falco: FlaskClient, cluster: Cluster, encoding: str, body: bytes, status: int, error: str
) -> None:
    response = post_encoded(falco, body, encoding)
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert security_events(cluster) == []


def test_the_cloudevent_functions_share_the_decoding() -> None:
    dead_letters = load_function_client("dead-letters")
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": "x"}
    refused = dead_letters.post("/", data=b"{}", headers={**headers, "Content-Encoding": "br"})
    assert refused.status_code == 415
    bomb = dead_letters.post("/", data=BOMB, headers={**headers, "Content-Encoding": "gzip"})
    assert bomb.status_code == 413


def falco_request(path: str, body: bytes) -> bytes:
    """A request exactly as Falco's http_output (libcurl) sends it: no credentials header."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: ingest-falco.amtd-system.svc\r\n"
        "User-Agent: falcosecurity/falco\r\nAccept: */*\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def send_raw(port: int, request: bytes) -> bytes:
    """One raw request; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_falco_http_output_is_authenticated_by_its_path_token(
    apiserver: Any, cluster: Cluster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "process.kubeconfig", user=USER)
    env = {"KUBECONFIG": str(kubeconfig), "INGEST_TOKEN": TOKEN, "INGEST_PATH_TOKEN": PATH_TOKEN}
    body = json.dumps(FALCO_EVENT).encode()
    with serve_function("ingest-falco", env) as url:
        port = int(url.rsplit(":", 1)[1])
        accepted = send_raw(port, falco_request(f"/t/{PATH_TOKEN}", body))
        wrong = send_raw(port, falco_request("/t/not-the-token", body))
        bare = send_raw(port, falco_request("/", body))
        bearer_token = send_raw(port, falco_request("/", body).replace(
            b"Accept: */*\r\n", f"Authorization: Bearer {TOKEN}\r\n".encode()))  # fmt: skip
        bearer_in_path = send_raw(port, falco_request(f"/t/{TOKEN}", body))
    assert accepted.startswith(b"HTTP/1.1 201 "), accepted
    assert wrong.startswith(b"HTTP/1.1 401 ") and bare.startswith(b"HTTP/1.1 401 ")
    assert bearer_token.startswith(b"HTTP/1.1 200 ")  # the same alert again: a repeat
    assert bearer_in_path.startswith(b"HTTP/1.1 401 ")  # the bearer token is not a path token
    assert len(security_events(cluster)) == 1
    logs = capfd.readouterr()
    assert PATH_TOKEN not in logs.err + logs.out and "not-the-token" not in logs.err + logs.out


def test_without_a_path_token_configured_the_path_opens_nothing(
    falco: FlaskClient, cluster: Cluster
) -> None:
    body = json.dumps(FALCO_EVENT)
    for path in ("/t/", "/t/anything", f"/t/{TOKEN}"):
        response = falco.post(path, data=body, content_type="application/json")
        assert response.status_code == 401, path
    assert security_events(cluster) == []
