"""The request log, fault injection, and bad input that must give a 4xx (never a 500)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from amtd_stack.apiserver import ApiServer, RequestRecord

from .helpers import raw


def test_request_log_records_user_and_verbs(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.clear_requests()
    core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": []}})
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"a": "b"}}})
    core.list_namespaced_pod("default")
    core.delete_namespaced_pod("p", "default")
    with pytest.raises(ApiException):
        core.read_namespaced_pod("p", "default")
    seen = [(r.user, r.verb, r.resource, r.namespace, r.name, r.status) for r in apiserver.requests]
    assert seen == [
        ("test", "create", "pods", "default", "", 201),
        ("test", "patch", "pods", "default", "p", 200),
        ("test", "list", "pods", "default", "", 200),
        ("test", "delete", "pods", "default", "p", 200),
        ("test", "get", "pods", "default", "p", 404),
    ]
    apiserver.clear_requests()
    assert apiserver.requests == []


def test_each_kubeconfig_user_is_its_own_identity(apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kc", user="matcher")
    api = config.new_client_from_config(config_file=str(kubeconfig))
    client.AppsV1Api(api).list_namespaced_deployment("default")
    api.close()
    record = apiserver.requests[-1]
    assert (record.user, record.api_group, record.resource, record.verb) == (
        "matcher",
        "apps",
        "deployments",
        "list",
    )


def test_subresource_is_recorded(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": []}})
    core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Failed"}})
    assert apiserver.requests[-1].subresource == "status"


def test_injected_status_faults_do_not_change_state(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.inject_faults(1.0, statuses=(503,), match=lambda r: r.verb == "create")
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    assert caught.value.status == 503
    assert apiserver.requests[-1].fault == "status"
    assert core.list_namespaced_config_map("default").items == []  # lists are not matched
    apiserver.clear_faults()
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})


def test_fault_rate_is_seeded(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    def outcomes() -> list[int]:
        apiserver.inject_faults(0.5, statuses=(500, 503), seed=7)  # 429 brings Retry-After
        codes = []
        for _ in range(12):
            try:
                core.list_namespaced_secret("default")
                codes.append(200)
            except ApiException as exc:
                codes.append(exc.status)
        apiserver.clear_faults()
        return codes

    first = outcomes()
    assert first == outcomes()
    assert 200 in first and set(first) - {200}, first  # some pass, some fail


def test_dropped_connection_still_acts(apiserver: ApiServer) -> None:
    def is_create(record: RequestRecord) -> bool:
        return record.verb == "create"

    apiserver.inject_faults(1.0, drop=True, match=is_create)
    with pytest.raises(requests.exceptions.ConnectionError):
        raw(
            apiserver.url,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "c"}},
        )
    apiserver.clear_faults()
    assert raw(apiserver.url, "GET", "/api/v1/namespaces/default/configmaps/c").status_code == 200
    assert apiserver.requests[-2].fault == "drop"


def test_latency_only_fault(apiserver: ApiServer) -> None:
    apiserver.inject_faults(1.0, statuses=(), latency_s=0.01)
    answer = raw(apiserver.url, "GET", "/api/v1/namespaces")
    assert answer.status_code == 200
    assert apiserver.requests[-1].fault == "latency"


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "expected"),
    [
        ("POST", "/api/v1/namespaces/default/configmaps", b"{not json", "application/json", 400),
        ("POST", "/api/v1/namespaces/default/configmaps", b"[1, 2]", "application/json", 400),
        ("POST", "/api/v1/namespaces/default/configmaps", b'"text"', "application/json", 400),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"metadata": 5}',
            "application/json",
            400,
        ),
        ("POST", "/api/v1/namespaces/default/configmaps", b"{}", "application/json", 422),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"\x00\xff",
            "application/x-protobuf",
            415,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"metadata": {"name": "c", "labels": {"a": 1}}}',
            "application/json",
            422,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}',
            "application/json",
            400,
        ),
        ("PUT", "/api/v1/namespaces/default/configmaps", b"{}", "application/json", 405),
        ("POST", "/api/v1/namespaces/default/configmaps/x", b"{}", "application/json", 405),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc",
            None,
            "application/json",
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=%28%28",
            None,
            "application/json",
            400,
        ),
        ("GET", "/api/v1/namespaces/default/configmaps/a/b/c/d", None, "application/json", 404),
        ("GET", "/apis/nope/v1/things", None, "application/json", 404),
        ("DELETE", "/api/v1/namespaces/default/configmaps/x", b"[]", "application/json", 400),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            b"{}",
            "application/merge-patch+json",
            404,
        ),
    ],
)
def test_bad_input_is_a_4xx_status(
    apiserver: ApiServer,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str,
    expected: int,
) -> None:
    answer = raw(apiserver.url, method, path, body, content_type)
    assert answer.status_code == expected, answer.text
    status = answer.json()
    assert status["kind"] == "Status" and status["code"] == expected and status["message"]


def test_bad_patches_on_existing_object(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    path = "/api/v1/namespaces/default/configmaps/c"
    cases = [
        (b"{broken", "application/merge-patch+json"),
        (b"[1]", "application/merge-patch+json"),
        (b'{"op": "add"}', "application/json-patch+json"),
        (b'[{"op": "remove", "path": "/nothing/here"}]', "application/json-patch+json"),
        (b'[{"op": "test", "path": "/data/a", "value": "2"}]', "application/json-patch+json"),
        (b'{"metadata": {"name": "other"}}', "application/merge-patch+json"),
    ]
    for body, content_type in cases:
        answer = raw(apiserver.url, "PATCH", path, body, content_type)
        assert 400 <= answer.status_code < 500, (body, answer.status_code, answer.text)
        assert answer.json()["kind"] == "Status"
    assert core.read_namespaced_config_map("c", "default").data == {"a": "1"}


def test_garbage_on_the_socket_does_not_hurt(apiserver: ApiServer) -> None:
    for junk in (
        b"\x16\x03\x01\x00\xff garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"PATCH /api/v1 HTTP/9.9\r\n",
    ):
        with socket.create_connection((apiserver.host, apiserver.port), timeout=10) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(4096)
    assert raw(apiserver.url, "GET", "/healthz").status_code == 200


def test_runs_as_a_module_and_writes_a_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    command = [sys.executable, "-m", "amtd_stack.apiserver", "--kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(url + "/readyz", timeout=10).status_code == 200
        api = config.new_client_from_config(config_file=str(kubeconfig))
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        api.close()
        assert "default" in names
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
