"""Names reaching API paths are checked before any request; every API call has a bounded time.

Against the API stand-in, through the official client: a hostile name (``?watch=true`` once
turned a GET into a watch that never ended) is refused with InvalidNameError and nothing is
sent; the executor answers 400 to an ``action.requested`` carrying one; an answer that trickles
in is cut at the configured bound.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import EVENTS, PODS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import InvalidError, TransientError
from amtd.kube.names import InvalidNameError
from amtd.kube.timeouts import Timeouts
from amtd.model.actionevents import ActionRequest, ActionStep, SecurityEventRef
from amtd_stack.apiserver import ApiServer
from support.builders import create_security_event
from support.executors import post_event
from support.functions import load_function_client
from support.standins import Stand, connect, create_pod

USER = "executor-delete"
HOSTILE_NAMES = [
    "?watch=true",
    "sev?watch=true",
    "../pods",
    "..",
    ".",
    "a/b",
    "%2F",
    "a%2Fb",
    "sev\n",
    "x" * 254,
    "Upper",
    "-dash",
    "dot.",
    "",
    "sev#frag",
    "spa ce",
]
HOSTILE_NAMESPACES = ["Default", "kube-system\n", "a/b", "..", "x" * 64, "a.b", "?watch=1"]


def refused_silently(stand: Stand, call: object) -> InvalidNameError:
    """Run ``call``; it must raise InvalidNameError without a request reaching the server."""
    stand.server.clear_requests()
    with pytest.raises(InvalidNameError) as raised:
        call()  # type: ignore[operator]
    assert stand.server.requests == []
    return raised.value


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_name_is_refused_before_any_request(stand: Stand, name: str) -> None:
    cluster = stand.cluster
    error = refused_silently(stand, lambda: cluster.get(SECURITY_EVENTS, name))
    assert error.field == "name" and error.value == name
    refused_silently(stand, lambda: cluster.find(PODS, name, "shop"))
    refused_silently(stand, lambda: cluster.delete(PODS, name, "shop", uid="u"))
    refused_silently(stand, lambda: cluster.patch(PODS, name, {"metadata": {}}, "shop"))
    body = {"metadata": {"name": name}, "status": {}}
    refused_silently(stand, lambda: cluster.replace(SECURITY_EVENTS, body, sub="status"))
    refused_silently(stand, lambda: cluster.mutate_status(SECURITY_EVENTS, name, lambda _: {}))


@pytest.mark.parametrize("namespace", HOSTILE_NAMESPACES)
def test_a_hostile_namespace_is_refused_before_any_request(stand: Stand, namespace: str) -> None:
    cluster = stand.cluster
    error = refused_silently(stand, lambda: cluster.get(PODS, "web", namespace))
    assert error.field == "namespace"
    refused_silently(stand, lambda: cluster.list(PODS, namespace))
    refused_silently(stand, lambda: cluster.create(EVENTS, {"metadata": {}}, namespace))


def test_a_namespaced_object_needs_a_namespace_and_a_subresource_is_a_word(stand: Stand) -> None:
    refused_silently(stand, lambda: stand.cluster.get(PODS, "web"))
    refused_silently(stand, lambda: stand.cluster.patch(PODS, "web", {}, "shop", sub="../log"))
    refused_silently(stand, lambda: stand.cluster.patch(PODS, "web", {}, "shop", sub="Status"))


def test_names_with_dots_still_work(stand: Stand) -> None:
    create_security_event(stand.cluster, "sev.with.dots", targets=["shop/web.v1-0"])
    pod = create_pod(stand.cluster, "shop", "web.v1-0")

    found = stand.cluster.get(SECURITY_EVENTS, "sev.with.dots")
    assert found["metadata"]["name"] == "sev.with.dots"
    assert stand.cluster.get(PODS, "web.v1-0", "shop")["metadata"]["uid"] == pod["metadata"]["uid"]
    assert stand.cluster.find(PODS, "web.v1-1", "shop") is None
    assert ("get", "pods", "shop", "web.v1-0") in {
        (r.verb, r.resource, r.namespace, r.name) for r in stand.server.requests
    }


def test_selectors_travel_as_query_parameters_and_nothing_else_does(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "web", labels={"app": "web"})
    stand.server.clear_requests()

    pods = stand.cluster.list(PODS, "shop", label_selector="app=web")
    with pytest.raises(InvalidError):  # one odd selector, not a watch, not a hang
        stand.cluster.list(PODS, "shop", label_selector="app=web&watch=true")
    with pytest.raises(TypeError):
        stand.cluster.list(PODS, "shop", watch="true")

    assert [pod["metadata"]["name"] for pod in pods] == ["web"]
    assert [record.verb for record in stand.server.requests] == ["list", "list"]


def test_the_stand_in_decodes_percent_encoded_segments(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "web")
    path = "/api/v1/namespaces/%73hop/pods/w%65b"  # what a client that encodes everything sends

    assert stand.cluster.request("GET", path)["metadata"]["name"] == "web"
    (record,) = [r for r in stand.server.requests if r.verb == "get"]
    assert (record.namespace, record.name) == ("shop", "web")


@pytest.fixture
def client(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    with stand.connect_functions(USER, monkeypatch):
        yield load_function_client("executors/delete")


def hostile_request(name: str) -> ActionRequest:
    """An ``action.requested`` for SecurityEvent ``name`` with one well-formed delete step."""
    step = ActionStep(
        step_id="s1", target="shop/web", pod_uid="u", action="delete", policy="shop/p",
        rule_index=0,
    )  # fmt: skip
    return ActionRequest(
        security_event=SecurityEventRef(name=name, uid="u", generation=1), steps=[step]
    )


@pytest.mark.parametrize("name", ["?watch=true", "../pods", "a/b", "%2F", "sev\n", "x" * 254])
def test_the_executor_answers_400_to_a_hostile_security_event_name(
    stand: Stand, client: FlaskClient, name: str
) -> None:
    stand.server.clear_requests()

    reply = post_event(client, hostile_request(name), structured=True)  # a header holds no \n

    assert reply.status_code == 400, reply.data
    body = json.loads(reply.data)
    assert body["error"] == "InvalidActionRequest"
    assert "securityEvent.name" in body["detail"]
    assert [record for record in stand.server.requests if record.user == USER] == []


@pytest.mark.parametrize("target", ["shop/web\n", "shop\n/web"])
def test_the_executor_answers_400_to_a_target_with_a_trailing_newline(
    stand: Stand, client: FlaskClient, target: str
) -> None:
    request = hostile_request("sev")
    request = request.model_copy(update={"steps": [request.steps[0].model_copy(
        update={"target": target})]})  # fmt: skip
    stand.server.clear_requests()

    reply = post_event(client, request, structured=True)

    assert reply.status_code == 400, reply.data
    assert [record for record in stand.server.requests if record.user == USER] == []


def slow_cluster(server: ApiServer, folder: Path, total_s: float) -> Cluster:
    """A connection as user ``slow`` whose calls may take ``total_s`` in all."""
    cluster = connect(server.write_kubeconfig(folder / "kubeconfig-slow", user="slow"))
    return Cluster(cluster.api_client, Timeouts(connect_s=1.0, total_s=total_s))


def test_an_answer_that_trickles_in_is_cut_at_the_bound(stand: Stand) -> None:
    create_security_event(stand.cluster, "sev-slow", targets=["shop/web"])
    cluster = slow_cluster(stand.server, stand.folder, total_s=0.8)
    stand.server.inject_faults(1.0, statuses=(), trickle_s=0.05, match=lambda r: r.user == "slow")

    started = time.monotonic()
    with pytest.raises(TransientError):  # the body (~400 bytes) would take ~20 s
        cluster.get(SECURITY_EVENTS, "sev-slow")
    elapsed = time.monotonic() - started

    assert 0.8 < elapsed < 1.0 + 0.8 + 0.5  # cut at connect + total bound (plus a margin)
    stand.server.clear_faults()
    assert cluster.get(SECURITY_EVENTS, "sev-slow")["metadata"]["name"] == "sev-slow"


def test_a_slow_but_finite_answer_within_the_bound_is_read_whole(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "web")
    cluster = slow_cluster(stand.server, stand.folder, total_s=10.0)
    stand.server.inject_faults(1.0, statuses=(), trickle_s=0.001, match=lambda r: r.user == "slow")

    assert cluster.get(PODS, "web", "shop")["metadata"]["name"] == "web"
    assert [r.fault for r in stand.server.requests if r.user == "slow"] == ["trickle"]


def test_the_bounds_are_read_from_the_environment() -> None:
    assert Timeouts.from_env({}) == Timeouts(5.0, 10.0)
    env = {"AMTD_API_TIMEOUT_S": "2.5", "AMTD_API_CONNECT_TIMEOUT_S": "9"}
    assert Timeouts.from_env(env) == Timeouts(9.0, 2.5)
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(ValueError, match="AMTD_API_TIMEOUT_S"):
            Timeouts.from_env({"AMTD_API_TIMEOUT_S": bad})
