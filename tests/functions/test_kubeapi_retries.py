"""Calls the API server turned away are repeated in place; calls that may have acted are not.

Against the API stand-in, through the official client: the stand-in's fault plan answers the
first tries of a call with an error (it carries nothing out when it does), and its request log
shows how many tries reached it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from amtd.kube.api import PODS, Cluster
from amtd.kube.apierrors import TransientError
from amtd.kube.retrying import (
    MAX_WAIT_S,
    REPEATS,
    compute_wait,
    is_outcome_unknown,
    is_repeatable,
)
from amtd_stack.apiserver.faults import RequestRecord
from support.standins import Stand, connect, create_pod

USER = "flaky"


def first_tries(count: int, verb: str) -> Callable[[RequestRecord], bool]:
    """A fault-plan match: the first ``count`` requests of ``verb`` by :data:`USER`."""
    seen = itertools.count()
    return lambda record: record.user == USER and record.verb == verb and next(seen) < count


def flaky_cluster(stand: Stand) -> Cluster:
    """A connection as :data:`USER` (whose calls the tests fault)."""
    return connect(stand.server.write_kubeconfig(stand.folder / "kubeconfig-flaky", user=USER))


def tries(stand: Stand, verb: str) -> list[RequestRecord]:
    """The requests of ``verb`` by :data:`USER` the stand-in saw, faulted or not."""
    return [r for r in stand.server.requests if r.user == USER and r.verb == verb]


def pod_manifest(name: str) -> dict[str, object]:
    """A minimal pod in namespace ``shop``."""
    containers = [{"name": "app", "image": "nginx"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": containers}}  # fmt: skip


@pytest.mark.parametrize("status", [503, 429])
def test_a_write_turned_away_is_repeated_and_done_once(stand: Stand, status: int) -> None:
    cluster = flaky_cluster(stand)
    stand.server.inject_faults(1.0, statuses=(status,), match=first_tries(2, "create"))

    created = cluster.create(PODS, pod_manifest("web"), "shop")

    assert created["metadata"]["name"] == "web"
    assert [(r.status, r.fault) for r in tries(stand, "create")] == [
        (status, "status"), (status, "status"), (201, ""),
    ]  # fmt: skip


def test_a_write_answered_500_is_not_repeated(stand: Stand) -> None:
    cluster = flaky_cluster(stand)
    stand.server.inject_faults(1.0, statuses=(500,), match=first_tries(1, "create"))

    with pytest.raises(TransientError) as raised:
        cluster.create(PODS, pod_manifest("web"), "shop")

    assert raised.value.status == 500
    assert len(tries(stand, "create")) == 1  # it may have acted: its caller finds out
    assert stand.cluster.find(PODS, "web", "shop") is None


def test_a_read_answered_500_is_repeated(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "web")
    cluster = flaky_cluster(stand)
    stand.server.inject_faults(1.0, statuses=(500,), match=first_tries(1, "get"))

    assert cluster.get(PODS, "web", "shop")["metadata"]["name"] == "web"
    assert [r.status for r in tries(stand, "get")] == [500, 200]


def test_a_server_that_keeps_refusing_is_left_to_the_broker(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "web")
    cluster = flaky_cluster(stand)
    stand.server.inject_faults(1.0, statuses=(503,), match=first_tries(99, "delete"))

    with pytest.raises(TransientError) as raised:
        cluster.delete(PODS, "web", "shop")

    assert raised.value.status == 503
    assert len(tries(stand, "delete")) == 1 + REPEATS
    assert stand.cluster.find(PODS, "web", "shop") is not None


def test_retry_after_is_waited_for(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "web")
    cluster = flaky_cluster(stand)
    stand.server.inject_faults(1.0, statuses=(429,), match=first_tries(1, "get"))

    started = time.monotonic()
    cluster.get(PODS, "web", "shop")

    assert time.monotonic() - started >= 0.9  # the stand-in's 429 says Retry-After: 1
    assert [r.status for r in tries(stand, "get")] == [429, 200]


def test_an_eviction_blocked_by_a_budget_is_not_repeated(stand: Stand) -> None:
    pod = create_pod(stand.cluster, "shop", "web")
    cluster = flaky_cluster(stand)
    stand.server.inject_faults(1.0, statuses=(429,), match=first_tries(9, "create"))
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "web", "namespace": "shop"},
                "deleteOptions": {"preconditions": {"uid": pod["metadata"]["uid"]}}}  # fmt: skip

    with pytest.raises(TransientError) as raised:
        cluster.create(PODS, eviction, "shop", sub="eviction")

    assert raised.value.status == 429
    assert [r.subresource for r in tries(stand, "create")] == ["eviction"]


def test_which_answers_are_repeated() -> None:
    pods = "/api/v1/namespaces/shop/pods"
    assert is_repeatable("POST", pods, 429, 0) and is_repeatable("PATCH", pods, 503, 2)
    assert not is_repeatable("PATCH", pods, 503, REPEATS)
    assert is_repeatable("GET", pods, 500, 0) and is_repeatable("GET", pods, 504, 0)
    assert is_repeatable("PUT", f"{pods}/web", 500, 0)  # conditional: a repeat is a 409
    for method in ("POST", "PATCH", "DELETE"):
        assert not is_repeatable(method, pods, 500, 0)
        assert not is_repeatable(method, pods, 504, 0)
    assert not is_repeatable("GET", pods, 0, 0)  # no answer: urllib3's to repeat, or a timeout
    assert not is_repeatable("POST", f"{pods}/web/eviction", 429, 0)
    assert is_repeatable("POST", f"{pods}/web/eviction", 503, 0)
    # a status patch pinning its resourceVersion: as harmless as a PUT, answered or not
    status = "/apis/amtd.r6security.com/v1beta1/securityevents/se/status"
    assert is_repeatable("PATCH", status, 500, 0, conditional=True)
    assert is_repeatable("PATCH", status, 0, 0, conditional=True)
    assert not is_repeatable("PATCH", status, 500, REPEATS, conditional=True)


def test_which_failures_may_have_been_carried_out() -> None:
    assert [status for status in (0, 429, 500, 502, 503, 504) if is_outcome_unknown(status)] == [
        0, 500, 502, 504,
    ]  # fmt: skip


def test_a_put_needs_a_resource_version(stand: Stand) -> None:
    pod = create_pod(stand.cluster, "shop", "web")
    del pod["metadata"]["resourceVersion"]
    stand.server.clear_requests()
    with pytest.raises(ValueError, match="resourceVersion"):
        flaky_cluster(stand).replace(PODS, pod)
    assert stand.server.requests == []


def test_how_long_a_repeat_waits() -> None:
    assert compute_wait(0, None, 0.0) == pytest.approx(0.05)
    assert compute_wait(2, None, 0.0) == pytest.approx(0.2)
    assert compute_wait(1, None, 0.5) == pytest.approx(0.15)
    assert compute_wait(9, None, 0.9) == MAX_WAIT_S
    assert compute_wait(0, 1.0, 0.9) == 1.0
    assert compute_wait(0, 30.0, 0.0) == MAX_WAIT_S  # a delivery's timeout is shared
