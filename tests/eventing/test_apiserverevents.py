"""ApiServerSource event construction and selectors (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amtd_stack.errors import ManifestError
from amtd_stack.eventing.apiserversources import (
    build_apiserver_event,
    build_subject,
    format_label_selector,
    is_owned_by,
    parse_apiserversource,
)
from amtd_stack.manifests import Manifest

MANIFEST = Manifest(
    {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "ApiServerSource",
        "metadata": {"name": "pods", "namespace": "amtd-system"},
        "spec": {
            "resources": [{"apiVersion": "v1", "kind": "Pod"}],
            "sink": {"uri": "http://x"},
            "owner": {"apiVersion": "apps/v1", "kind": "ReplicaSet"},
        },
    },
    Path("sources.yaml"),
)
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-1",
        "namespace": "demo",
        "resourceVersion": "7",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web"}],
    },
}


def test_subjects_for_namespaced_and_cluster_scoped_objects() -> None:
    assert build_subject("v1", "pods", "demo", "web-1") == "/apis/v1/namespaces/demo/pods/web-1"
    assert (
        build_subject("amtd.r6security.com/v1beta1", "securityevents", "", "se")
        == "/apis/amtd.r6security.com/v1beta1/namespaces//securityevents/se"
    )


def test_reference_mode_event_defaults() -> None:
    source = parse_apiserversource(MANIFEST)
    assert source.mode == "Reference" and source.service_account == "default"
    assert source.namespace_selector is None
    event = build_apiserver_event(source, "http://api", "pods", "MODIFIED", POD)
    assert event["type"] == "dev.knative.apiserver.ref.update"
    assert (event["kind"], event["name"], event["namespace"]) == ("Pod", "web-1", "demo")
    assert json.loads(event.data) == {
        "kind": "Pod",
        "namespace": "demo",
        "name": "web-1",
        "apiVersion": "v1",
    }
    assert "time" not in event.get_attributes()


def test_cluster_scoped_event_has_an_empty_namespace_extension() -> None:
    source = parse_apiserversource(MANIFEST)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    event = build_apiserver_event(source, "http://api", "nodes", "ADDED", node)
    assert event["subject"] == "/apis/v1/namespaces//nodes/n1"  # core kinds: /apis/v1 too
    assert event.get_attributes()["namespace"] == ""
    assert json.loads(event.data) == {"kind": "Node", "name": "n1", "apiVersion": "v1"}


def test_owner_filter() -> None:
    owner = parse_apiserversource(MANIFEST).owner
    assert is_owned_by(POD, owner)
    assert not is_owned_by({"metadata": {"name": "bare"}}, owner)
    assert is_owned_by({"metadata": {"name": "bare"}}, None)


def test_label_selectors_render_like_kubectl() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
        ],
    }
    assert (
        format_label_selector(selector, "f", MANIFEST)
        == "app=web,tier in (a,b),!canary,zone,env notin (dev)"
    )
    assert format_label_selector({}, "f", MANIFEST) == ""
    with pytest.raises(ManifestError) as caught:
        format_label_selector(
            {"matchExpressions": [{"key": "a", "operator": "Near"}]}, "f", MANIFEST
        )
    assert caught.value.field == "f.matchExpressions[0].operator"
