"""The stand-in's pods/ephemeralcontainers subresource, through the official client: adds only."""

from __future__ import annotations

import pytest

from amtd.kube.api import PODS
from amtd.kube.apierrors import InvalidError, NotFoundError
from support.standins import Stand, create_pod

DEBUG = {"name": "dbg", "image": "busybox", "stdin": True}


def as_sent(containers: list[dict[str, object]]) -> list[dict[str, object]]:
    """The containers without the defaults the server adds (imagePullPolicy, ...)."""
    return [{k: v for k, v in c.items() if k in DEBUG} for c in containers]


def attach(stand: Stand, pod: str, *containers: dict[str, object]) -> dict[str, object]:
    """PATCH the subresource (strategic merge, as kubectl debug does)."""
    patch = {"spec": {"ephemeralContainers": list(containers)}}
    return stand.cluster.patch(PODS, pod, patch, "shop", kind="strategic",
                               sub="ephemeralcontainers")  # fmt: skip


def test_adds_a_container_and_the_kubelet_runs_it(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "p")
    answered = attach(stand, "p", DEBUG)
    assert as_sent(answered["spec"]["ephemeralContainers"]) == [DEBUG]
    (shown,) = answered["status"]["ephemeralContainerStatuses"]
    assert shown["name"] == "dbg" and "running" in shown["state"]
    read = stand.cluster.get(PODS, "p", "shop")
    assert as_sent(read["spec"]["ephemeralContainers"]) == [DEBUG]
    assert read["spec"]["containers"][0]["name"] == "nginx"  # nothing else written


def test_an_existing_container_can_be_neither_changed_nor_removed(stand: Stand) -> None:
    create_pod(stand.cluster, "shop", "p")
    attach(stand, "p", DEBUG)
    with pytest.raises(InvalidError, match='"dbg" may not be changed'):
        attach(stand, "p", {**DEBUG, "image": "other"})
    body = stand.cluster.get(PODS, "p", "shop")
    body["spec"]["ephemeralContainers"] = []
    with pytest.raises(InvalidError, match='"dbg" may not be removed'):
        stand.cluster.replace(PODS, body, sub="ephemeralcontainers")
    assert as_sent(stand.cluster.get(PODS, "p", "shop")["spec"]["ephemeralContainers"]) == [DEBUG]


@pytest.mark.parametrize(
    ("container", "fragment"),
    [
        ({"name": "nginx", "image": "busybox"}, 'Duplicate value: "nginx"'),
        ({"name": "Bad_Name", "image": "busybox"}, "DNS-1123 label"),
        ({"name": "d"}, "image: Required value"),
        ({"name": "d", "image": "b", "ports": [{"containerPort": 1}]}, "cannot be set"),
        ({"name": "d", "image": "b", "targetContainerName": "nope"}, 'Not found: "nope"'),
    ],
)
def test_containers_the_real_server_refuses_are_422(
    stand: Stand, container: dict[str, object], fragment: str
) -> None:
    create_pod(stand.cluster, "shop", "p")
    with pytest.raises(InvalidError, match=fragment) as caught:
        attach(stand, "p", container)
    assert caught.value.status == 422
    assert "ephemeralContainers" not in stand.cluster.get(PODS, "p", "shop")["spec"]


def test_a_missing_pod_is_404(stand: Stand) -> None:
    with pytest.raises(NotFoundError):
        attach(stand, "absent", DEBUG)
