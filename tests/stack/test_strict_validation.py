"""fieldValidation for built-in kinds: Strict refuses unknown fields (400 naming each one), Warn
drops them with a Warning header, Ignore drops them silently; kubectl's --validate drives it."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from amtd_stack.apiserver import ApiServer
from amtd_stack.apiserver.fieldschemas import drop_unknown_fields

from .conftest import KubectlRun
from .helpers import raw


def bad_pod(name: str) -> dict[str, Any]:
    """A pod with an unknown field in its spec and in its container."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"foo": 1, "containers": [{"name": "a", "image": "nginx", "bogus": True}]},
    }


def test_kubectl_strict_by_default_names_every_unknown_field(kubectl_run: KubectlRun) -> None:
    done = kubectl_run("apply", "-f", "-", stdin=json.dumps(bad_pod("p")), check=False)
    assert done.returncode != 0
    assert 'Pod in version "v1" cannot be handled as a Pod: strict decoding error' in done.stderr
    assert 'unknown field "spec.foo"' in done.stderr
    assert 'unknown field "spec.containers[0].bogus"' in done.stderr
    missing = kubectl_run("get", "pod", "p", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_kubectl_validate_warn_stores_without_the_fields(kubectl_run: KubectlRun) -> None:
    done = kubectl_run("apply", "--validate=warn", "-f", "-", stdin=json.dumps(bad_pod("w")))
    assert 'Warning: unknown field "spec.foo"' in done.stderr
    spec = json.loads(kubectl_run("get", "pod", "w", "-o", "jsonpath={.spec}").stdout)
    assert "foo" not in spec and "bogus" not in spec["containers"][0]


def test_kubectl_validate_false_ignores_silently(kubectl_run: KubectlRun) -> None:
    done = kubectl_run("create", "--validate=false", "-f", "-", stdin=json.dumps(bad_pod("i")))
    assert "Warning" not in done.stderr and "pod/i created" in done.stdout
    assert "foo" not in kubectl_run("get", "pod", "i", "-o", "jsonpath={.spec}").stdout


def test_nested_template_and_metadata_fields(kubectl_run: KubectlRun) -> None:
    labels = {"app": "d"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "colour": "red"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "a", "image": "nginx", "portz": [80]}]},
            },
        },
    }
    done = kubectl_run("create", "-f", "-", stdin=json.dumps(deployment), check=False)
    assert 'unknown field "metadata.colour"' in done.stderr
    assert 'unknown field "spec.template.spec.containers[0].portz"' in done.stderr


def test_raw_http_modes(apiserver: ApiServer) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    body = {"metadata": {"name": "cm"}, "data": {"k": "v"}, "extra": 1}
    strict = raw(apiserver.url, "POST", path + "?fieldValidation=Strict", body)
    assert strict.status_code == 400
    assert strict.json()["message"].endswith('strict decoding error: unknown field "extra"')
    warned = raw(apiserver.url, "POST", path + "?fieldValidation=Warn", body)
    assert warned.status_code == 201 and "extra" not in warned.json()
    assert warned.headers["Warning"] == '299 - "unknown field \\"extra\\""'
    unset = raw(apiserver.url, "POST", path, {**body, "metadata": {"name": "cm2"}})
    assert unset.status_code == 201 and "Warning" in unset.headers  # Warn is the default
    ignored = raw(
        apiserver.url,
        "POST",
        path + "?fieldValidation=Ignore",
        {**body, "metadata": {"name": "cm3"}},
    )
    assert ignored.status_code == 201 and "Warning" not in ignored.headers
    wrong = raw(apiserver.url, "POST", path + "?fieldValidation=Loose", body)
    assert wrong.status_code == 400 and "fieldValidation" in wrong.json()["message"]


def test_known_fields_pass_strict(core: client.CoreV1Api) -> None:
    pod = bad_pod("ok")
    del pod["spec"]["foo"], pod["spec"]["containers"][0]["bogus"]
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "name": "http"}]
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    created = core.create_namespaced_pod("default", pod, field_validation="Strict")
    assert created.spec.containers[0].ports[0].container_port == 80


def test_unknown_fields_inside_maps_and_free_form_values() -> None:
    service = {
        "metadata": {"labels": {"any": "key"}},
        "spec": {"ports": [{"port": 80, "targetPort": "http", "nope": 1}], "selector": {"a": "b"}},
    }
    assert drop_unknown_fields("", "Service", service) == ["spec.ports[0].nope"]
    assert service["spec"]["ports"] == [{"port": 80, "targetPort": "http"}]
    assert drop_unknown_fields("", "NoSuchKind", {"x": 1}) == []
