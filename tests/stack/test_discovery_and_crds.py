"""Discovery documents, CRD registration, custom resource validation, pruning and status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from amtd_stack.apiserver import ApiServer

from .helpers import raw

GROUP, VERSION = "amtd.r6security.com", "v1beta1"


def _get(server: ApiServer, path: str) -> Any:
    answer = raw(server.url, "GET", path)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def _security_event(name: str, **spec: Any) -> dict[str, Any]:
    body = {"targets": ["demo/cart-1"], "rule": {"type": "shell", "source": "Falco"}, **spec}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SecurityEvent",
        "metadata": {"name": name},
        "spec": body,
    }


def test_health_and_version(apiserver: ApiServer) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        assert raw(apiserver.url, "GET", path).status_code == 200
    assert _get(apiserver, "/version")["major"] == "1"


def test_core_and_group_discovery(apiserver: ApiServer) -> None:
    assert _get(apiserver, "/api")["versions"] == ["v1"]
    core = {r["name"]: r for r in _get(apiserver, "/api/v1")["resources"]}
    assert core["pods"]["namespaced"] and core["pods"]["kind"] == "Pod"
    assert "po" in core["pods"]["shortNames"] and "watch" in core["pods"]["verbs"]
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert core["namespaces"]["namespaced"] is False
    groups = {g["name"]: g for g in _get(apiserver, "/apis")["groups"]}
    expected = {"apps", "networking.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io"}
    assert expected <= set(groups)
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    apps = {r["name"]: r for r in _get(apiserver, "/apis/apps/v1")["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert "all" in apps["replicasets"]["categories"]


def test_unknown_group_version_is_404(apiserver: ApiServer) -> None:
    answer = raw(apiserver.url, "GET", "/apis/nope.example.com/v1")
    assert answer.status_code == 404
    assert answer.json()["kind"] == "Status"


def test_crd_registers_types_at_once(
    apiserver: ApiServer, api_client: client.ApiClient, crds: list[dict[str, Any]]
) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    crd = ext.read_custom_resource_definition(f"securityevents.{GROUP}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    groups = {g["name"] for g in _get(apiserver, "/apis")["groups"]}
    assert GROUP in groups
    listing = _get(apiserver, f"/apis/{GROUP}/{VERSION}")
    resources = {r["name"]: r for r in listing["resources"]}
    assert resources["securityevents"]["namespaced"] is False
    assert resources["securityevents"]["kind"] == "SecurityEvent"
    assert "securityevents/status" in resources
    if "adaptivemovingtargetdefenses" in resources:
        assert resources["adaptivemovingtargetdefenses"]["namespaced"] is True


def test_custom_resource_crud(custom: client.CustomObjectsApi, crds: list[dict[str, Any]]) -> None:
    created = custom.create_cluster_custom_object(
        GROUP, VERSION, "securityevents", _security_event("se1", description="d")
    )
    assert created["metadata"]["uid"] and created["metadata"]["generation"] == 1
    listed = custom.list_cluster_custom_object(GROUP, VERSION, "securityevents")
    assert listed["kind"] == "SecurityEventList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["se1"]
    custom.delete_cluster_custom_object(GROUP, VERSION, "securityevents", "se1")
    with pytest.raises(ApiException) as caught:
        custom.get_cluster_custom_object(GROUP, VERSION, "securityevents", "se1")
    assert caught.value.status == 404


def test_validation_names_the_field(
    custom: client.CustomObjectsApi, crds: list[dict[str, Any]]
) -> None:
    bad = _security_event("bad")
    bad["spec"]["targets"] = "not-a-list"
    with pytest.raises(ApiException) as caught:
        custom.create_cluster_custom_object(GROUP, VERSION, "securityevents", bad)
    assert caught.value.status == 422
    status = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.targets"]
    missing = _security_event("missing")
    del missing["spec"]["rule"]
    with pytest.raises(ApiException) as caught:
        custom.create_cluster_custom_object(GROUP, VERSION, "securityevents", missing)
    causes = json.loads(caught.value.body)["details"]["causes"]
    assert causes == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.rule"}
    ]


def test_a_security_event_names_at_most_1000_targets(
    custom: client.CustomObjectsApi, crds: list[dict[str, Any]]
) -> None:
    """The CRD caps spec.targets (etcd holds objects of 1.5 MiB at most, and each target grows
    the status by ~1 KB): the 1 001st target is refused at creation, naming the field."""
    targets = [f"demo/cart-{n}" for n in range(1_001)]
    custom.create_cluster_custom_object(
        GROUP, VERSION, "securityevents", _security_event("full", targets=targets[:1_000])
    )
    with pytest.raises(ApiException) as caught:
        custom.create_cluster_custom_object(
            GROUP, VERSION, "securityevents", _security_event("over", targets=targets)
        )
    assert caught.value.status == 422
    (cause,) = json.loads(caught.value.body)["details"]["causes"]
    assert cause["field"] == "spec.targets" and "1000" in cause["message"]


def test_unknown_fields_are_pruned(
    custom: client.CustomObjectsApi, crds: list[dict[str, Any]]
) -> None:
    body = _security_event("se", bogus="x")
    body["extra"] = {"a": 1}
    created = custom.create_cluster_custom_object(GROUP, VERSION, "securityevents", body)
    assert "bogus" not in created["spec"] and "extra" not in created
    assert created["spec"]["rule"] == {"type": "shell", "source": "Falco"}


def test_status_subresource(custom: client.CustomObjectsApi, crds: list[dict[str, Any]]) -> None:
    body = _security_event("se")
    body["status"] = {"phase": "Completed"}
    created = custom.create_cluster_custom_object(GROUP, VERSION, "securityevents", body)
    assert "status" not in created  # create drops status when the subresource exists
    patched = custom.patch_cluster_custom_object_status(
        GROUP, VERSION, "securityevents", "se", {"status": {"phase": "Pending"}, "spec": {}}
    )
    assert patched["status"]["phase"] == "Pending"
    assert patched["spec"] == created["spec"]  # /status ignores everything else
    assert patched["metadata"]["generation"] == 1
    main = custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "securityevents",
        "se",
        {"status": {"phase": "Failed"}, "spec": {"description": "new"}},
    )
    assert main["status"]["phase"] == "Pending"  # main resource ignores .status
    assert main["metadata"]["generation"] == 2


def test_namespaced_custom_resource_needs_namespace(
    custom: client.CustomObjectsApi, crds: list[dict[str, Any]]
) -> None:
    assert any(d["spec"]["scope"] == "Namespaced" for d in crds), "the AMTD CRD is namespaced"
    amtd = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AdaptiveMovingTargetDefense",
        "metadata": {"name": "p"},
        "spec": {
            "podSelector": {},
            "strategy": [{"rule": {"type": "x"}, "action": {"delete": {}}}],
        },
    }
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "nope", "adaptivemovingtargetdefenses", amtd
        )
    assert caught.value.status == 404
    made = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", "adaptivemovingtargetdefenses", amtd
    )
    assert made["metadata"]["namespace"] == "default"


def test_deleting_crd_removes_type_and_instances(
    apiserver: ApiServer,
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    crds: list[dict[str, Any]],
) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, "securityevents", _security_event("se"))
    client.ApiextensionsV1Api(api_client).delete_custom_resource_definition(
        f"securityevents.{GROUP}"
    )
    answer = raw(apiserver.url, "GET", f"/apis/{GROUP}/{VERSION}/securityevents")
    assert answer.status_code == 404
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(
        next(d for d in crds if d["spec"]["names"]["plural"] == "securityevents")
    )
    assert custom.list_cluster_custom_object(GROUP, VERSION, "securityevents")["items"] == []


OPEN_SCHEMA = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def _refused_crd_causes(
    api_client: client.ApiClient, name: str, schema: dict[str, Any] | None
) -> list[dict[str, str]]:
    """Create a one-version `Thing` CRD that must be refused; the 422's causes."""
    version = {"name": "v1", "served": True, "storage": True, "schema": schema}
    bad = {
        "metadata": {"name": name},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [{k: v for k, v in version.items() if v is not None}],
        },
    }
    with pytest.raises(ApiException) as caught:
        client.ApiextensionsV1Api(api_client).create_custom_resource_definition(bad)
    assert caught.value.status == 422
    causes: list[dict[str, str]] = json.loads(caught.value.body)["details"]["causes"]
    return causes


def test_invalid_crd_is_422(api_client: client.ApiClient) -> None:
    causes = _refused_crd_causes(api_client, "wrong.example.com", OPEN_SCHEMA)
    assert causes[0]["field"] == "metadata.name"


NON_STRUCTURAL = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"size": {"description": "no type"}, "mode": {"type": "string"}},
            "anyOf": [{"type": "object"}, {"properties": {"extra": {"type": "string"}}}],
        }
    },
}


@pytest.mark.parametrize(
    ("schema", "fields"),
    [
        (None, ["spec.versions[0].schema.openAPIV3Schema"]),
        (
            {"openAPIV3Schema": NON_STRUCTURAL},
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type",
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].anyOf[0].type",
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].anyOf[1]"
                ".properties[extra]",
            ],
        ),
    ],
    ids=["no schema", "not structural"],
)
def test_crd_without_a_structural_schema_is_422(
    api_client: client.ApiClient, schema: dict[str, Any] | None, fields: list[str]
) -> None:
    causes = _refused_crd_causes(api_client, "things.example.com", schema)
    assert [cause["field"] for cause in causes] == fields


def test_strict_field_validation_rejects_unknown_fields(
    custom: client.CustomObjectsApi, crds: list[dict[str, Any]]
) -> None:
    body = _security_event("se", bogus="x")
    with pytest.raises(ApiException) as caught:
        custom.create_cluster_custom_object(
            GROUP, VERSION, "securityevents", body, field_validation="Strict"
        )
    assert caught.value.status == 400
    assert 'unknown field "spec.bogus"' in json.loads(caught.value.body)["message"]


def _discovered_resources(server: ApiServer) -> list[dict[str, Any]]:
    """Every top-level resource of every served group version (subresources left out)."""
    paths = ["/api/v1"] + [
        f"/apis/{version['groupVersion']}"
        for group in _get(server, "/apis")["groups"]
        for version in group["versions"]
    ]
    found = [r for path in paths for r in _get(server, path)["resources"]]
    return [r for r in found if "/" not in r["name"]]


def test_no_short_name_is_a_category_or_another_resources_name(
    apiserver: ApiServer, crds: list[dict[str, Any]]
) -> None:
    """kubectl expands a category before it tries short names: `amtd` as both made every
    `kubectl get amtd NAME` fail with "you must specify only one resource"."""
    resources = _discovered_resources(apiserver)
    categories = {c for r in resources for c in r.get("categories", [])}
    words: dict[str, set[str]] = {}
    for r in resources:
        for word in {r["name"], r["singularName"] or r["kind"].lower(), *r.get("shortNames", [])}:
            words.setdefault(word, set()).add(f"{r['name']}.{r.get('group', '')}")
    ours = {word for doc in crds for word in doc["spec"]["names"].get("shortNames", [])}
    assert ours and ours <= set(words)
    assert {word: owners for word, owners in words.items() if len(owners) > 1} == {}
    assert categories & set(words) == set()
