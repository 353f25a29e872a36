"""OpenAPI v3 from the stand-in: `kubectl explain` for our CRDs and built-in kinds, the index and
group-version documents read by the official client, and the refusals of pods/log, exec,
attach and portforward (the embedded stack runs no containers)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import requests
from kubernetes import client

from amtd_stack.apiserver import ApiServer, builtinschemas, definitions, openapi

from .conftest import KubectlRun
from .helpers import project_crds

GROUP, VERSION = "amtd.r6security.com", "v1beta1"
BUILTIN_DEFS = kubernetes_validate.__path__[0] + "/kubernetes-json-schema/v1.32.0-local"


# explain path -> (the definition holding the field, the field, the field's own definition)
BUILTIN_CASES = {
    "pods.spec.containers": (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "io.k8s.api.core.v1.Container",
    ),
    "networkpolicy.spec": (
        "io.k8s.api.networking.v1.NetworkPolicy",
        "spec",
        "io.k8s.api.networking.v1.NetworkPolicySpec",
    ),
    "deployment.spec.strategy": (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "io.k8s.api.apps.v1.DeploymentStrategy",
    ),
}


def _flat(text: str) -> str:
    """Whitespace-insensitive text: explain wraps and indents descriptions."""
    return " ".join(text.split())


def _crd_schema(kind: str) -> dict[str, Any]:
    crd = next(d for d in project_crds() if d["spec"]["names"]["kind"] == kind)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _builtin(name: str) -> dict[str, Any]:
    with open(f"{BUILTIN_DEFS}/_definitions.json", encoding="utf-8") as handle:
        found: dict[str, Any] = json.load(handle)["$defs"][name]
    return found


def _descriptions(schema: dict[str, Any]) -> list[str]:
    """The descriptions of a schema's own fields (of its items', for an array)."""
    fields = (schema.get("items") or schema).get("properties", {})
    return [field["description"] for field in fields.values() if "description" in field]


def _expected(case: str) -> list[str]:
    """Descriptions `kubectl explain <case>` must print, read from the schemas themselves."""
    if case == "securityevent.spec":
        spec = _crd_schema("SecurityEvent")["properties"]["spec"]
        return _descriptions(spec)
    if case == "adaptivemovingtargetdefense.spec.strategy":
        strategy = _crd_schema("AdaptiveMovingTargetDefense")["properties"]["spec"]["properties"]
        return [strategy["strategy"]["description"], *_descriptions(strategy["strategy"])]
    parent, field, child = BUILTIN_CASES[case]
    return [_builtin(parent)["properties"][field]["description"], *_descriptions(_builtin(child))]


@pytest.mark.parametrize(
    "case",
    [
        "securityevent.spec",
        "adaptivemovingtargetdefense.spec.strategy",
        "pods.spec.containers",
        "networkpolicy.spec",
        "deployment.spec.strategy",
    ],
)
def test_kubectl_explain_prints_the_field_descriptions(
    case: str, crds: list[dict[str, Any]], kubectl_run: KubectlRun
) -> None:
    out = kubectl_run("explain", case).stdout
    assert f"FIELD: {case.rsplit('.', 1)[1]} <" in out
    expected = _expected(case)
    assert len(expected) >= 2, case
    for description in expected:
        assert _flat(description) in _flat(out), (case, description)


def test_kubectl_explain_marks_required_fields_and_refuses_unknown_ones(
    crds: list[dict[str, Any]], kubectl_run: KubectlRun
) -> None:
    out = kubectl_run("explain", "securityevent.spec").stdout
    assert any(
        line.split()[:3] == ["targets", "<[]string>", "-required-"] for line in out.splitlines()
    )
    top = kubectl_run("explain", "securityevents").stdout
    assert _flat(_crd_schema("SecurityEvent")["description"]) in _flat(top)
    assert "metadata\t<ObjectMeta>" in top  # the standard fields the server adds to a CRD
    missing = kubectl_run("explain", "securityevent.spec.nope", check=False)
    assert missing.returncode != 0
    assert 'field "nope" does not exist' in missing.stderr


def _get_json(api_client: client.ApiClient, path: str) -> Any:
    answer = api_client.call_api("GET", api_client.configuration.host + path)
    assert answer.status == 200, path
    return json.loads(answer.read())


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            # JSONSchemaProps (in CRDs' schema) has a field named $ref: not a reference
            yield from [value] if key == "$ref" and isinstance(value, str) else _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_official_client_reads_the_index_and_group_documents(
    crds: list[dict[str, Any]], api_client: client.ApiClient
) -> None:
    index = _get_json(api_client, "/openapi/v3")["paths"]
    assert {"api/v1", "apis/apps/v1", f"apis/{GROUP}/{VERSION}"} <= set(index)
    for entry in index.values():
        document = _get_json(api_client, entry["serverRelativeURL"])
        schemas = document["components"]["schemas"]
        for ref in _refs(document):  # every reference resolves inside its own document
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
    ours = _get_json(api_client, index[f"apis/{GROUP}/{VERSION}"]["serverRelativeURL"])
    event = ours["components"]["schemas"]["com.r6security.amtd.v1beta1.SecurityEvent"]
    assert event["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "kind": "SecurityEvent", "version": VERSION}
    ]
    assert event["properties"]["spec"] == _crd_schema("SecurityEvent")["properties"]["spec"]
    meta = event["properties"]["metadata"]["allOf"][0]["$ref"]
    assert meta == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    listed = ours["components"]["schemas"]["com.r6security.amtd.v1beta1.SecurityEventList"]
    assert listed["x-kubernetes-group-version-kind"][0]["kind"] == "SecurityEventList"
    pod = _get_json(api_client, index["api/v1"]["serverRelativeURL"])["components"]["schemas"]
    gvk = pod["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"]
    assert gvk == [{"group": "", "kind": "Pod", "version": "v1"}]


def _index(server: ApiServer) -> dict[str, str]:
    paths = requests.get(server.url + "/openapi/v3", timeout=10).json()["paths"]
    return {key: entry["serverRelativeURL"] for key, entry in paths.items()}


def _extra_crd() -> dict[str, Any]:
    crd = copy.deepcopy(
        next(d for d in project_crds() if d["spec"]["names"]["kind"] == "SecurityEvent")
    )
    crd["metadata"] = {"name": f"probes.{GROUP}"}
    crd["spec"]["names"] = {"kind": "Probe", "plural": "probes", "singular": "probe"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["description"] = "A probe, registered after the first documents were served."
    return crd


def test_a_crd_created_later_changes_its_group_document_and_hash(
    apiserver: ApiServer,
    crds: list[dict[str, Any]],
    api_client: client.ApiClient,
    kubectl_run: KubectlRun,
) -> None:
    before = _index(apiserver)
    key = f"apis/{GROUP}/{VERSION}"
    kubectl_run("explain", "securityevent.spec")  # documents built (and cached) before the change
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(_extra_crd())
    after = _index(apiserver)
    assert after[key] != before[key]
    assert after["api/v1"] == before["api/v1"]  # the other group versions are untouched
    stale = requests.get(apiserver.url + before[key], allow_redirects=False, timeout=10)
    assert stale.status_code == 301
    assert stale.headers["Location"] == after[key]
    out = kubectl_run("explain", "probes").stdout
    assert "A probe, registered after the first documents were served." in out


def test_hashed_documents_are_cacheable_and_v2_is_a_clear_404(apiserver: ApiServer) -> None:
    url = apiserver.url + _index(apiserver)["api/v1"]
    first = requests.get(url, timeout=10)
    assert first.status_code == 200
    assert "immutable" in first.headers["Cache-Control"]
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    v2 = requests.get(apiserver.url + "/openapi/v2", timeout=10)
    assert v2.status_code == 404
    assert v2.json()["kind"] == "Status"
    assert "/openapi/v3" in v2.json()["message"]
    assert requests.get(apiserver.url + "/openapi/v3/apis/nope/v1", timeout=10).status_code == 404


@pytest.fixture
def pod(core: client.CoreV1Api) -> str:
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]
        },
    }
    core.create_namespaced_pod("default", body)
    return "web"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("logs", "web"), "Error from server (BadRequest): "),
        (("exec", "web", "--", "ls"), "Error from server (BadRequest): "),
        (("attach", "web"), "Error from server (BadRequest): "),
        (("port-forward", "web", "0:80"), "error upgrading connection: "),
    ],
)
def test_kubectl_streams_say_the_stack_runs_no_containers(
    pod: str, args: tuple[str, ...], says: str, kubectl_run: KubectlRun
) -> None:
    done = kubectl_run(*args, check=False)
    assert done.returncode != 0
    assert f'{says}the embedded amtd stack runs no containers: pod "default/{pod}"' in done.stderr


def test_kubectl_logs_of_a_missing_pod_is_not_found(kubectl_run: KubectlRun) -> None:
    done = kubectl_run("logs", "ghost", check=False)
    assert done.returncode != 0
    assert 'pods "ghost" not found' in done.stderr


def test_json_schema_definitions_become_the_servers_openapi_v3_shape() -> None:
    node = {
        "type": ["object", "null"],
        "properties": {
            "kind": {"type": ["string", "null"], "enum": ["Pod"], "description": "Kind."},
            "spec": {"$ref": "#/$defs/io.k8s.api.core.v1.PodSpec", "description": "Spec."},
            "port": {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
            "items": {"type": "array", "items": {"$ref": "#/$defs/x.Y"}},
        },
    }
    assert builtinschemas.convert(node) == {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "description": "Kind."},
            "spec": {
                "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}],
                "description": "Spec.",
            },
            "port": {"type": "string", "format": "int-or-string"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/x.Y"}},
        },
    }


def test_without_kubernetes_validate_a_crd_document_still_resolves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(builtinschemas, "definitions", dict)  # as if the package were missing
    types = [t for crd in project_crds() for t in definitions.resource_types(crd)]
    document = openapi.group_version_document(types)
    schemas = document["components"]["schemas"]
    assert set(schemas) == {
        openapi.schema_name(t, k) for t in types for k in (t.kind, t.kind + "List")
    }
    for ref in _refs(document):  # nothing dangles
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    event = schemas["com.r6security.amtd.v1beta1.SecurityEvent"]
    assert event["properties"]["metadata"]["type"] == "object"


def test_kubectl_still_finds_field_validation_in_the_documents(
    crds: list[dict[str, Any]], kubectl_run: KubectlRun
) -> None:
    """kubectl sends fieldValidation=Strict only where the document lists it (else it warns)."""
    event = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SecurityEvent",
        "metadata": {"name": "strict-1"},
        "spec": {"targets": ["demo/web-1"], "rule": {"type": "shell"}, "bogus": 1},
    }
    done = kubectl_run("apply", "-f", "-", stdin=json.dumps(event), check=False)
    assert done.returncode != 0
    assert 'unknown field "spec.bogus"' in done.stderr
