"""executor-debug against the API stand-in: Phoenix's ``debugger`` and ``customAction`` add one
ephemeral container to the pod, exactly once, guarded, signed, audited."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from amtd.act.debug.attaching import make_container_name
from amtd.kube.api import PODS, Cluster
from amtd.model.actionevents import (
    ActionRequest,
    make_request_id,
    to_request_attributes,
)
from amtd_stack.apiserver.defaulting import default_container
from support.builders import create_security_event
from support.cloudevents import read_reply
from support.executors import (
    create_decided_event,
    event_of,
    make_decision,
    only_execution,
    post_event,
    read_status,
    record_signed_decisions,
    refer_to_created,
    wait_for_events_about,
)
from support.functions import load_function_client, serve_function
from support.standins import Stand, create_deployment

USER = "executor-debug"
CUSTOM = {
    "name": "forensics",
    "image": "registry.example.com/forensics:1.2",
    "command": ["/bin/collect"],
    "args": ["--all", "--out=/evidence"],
    "env": [{"name": "MODE", "value": "full"}],
    "workingDir": "/evidence",
    "imagePullPolicy": "IfNotPresent",
    "stdin": True,
    "tty": False,
    "targetContainerName": "nginx",
    "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True},
    "terminationMessagePolicy": "FallbackToLogsOnError",
}


@pytest.fixture
def client(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    with stand.connect_functions(USER, monkeypatch):
        yield load_function_client("executors/debug")


def as_stored(container: dict[str, Any]) -> dict[str, Any]:
    """A container as the API server stores it: with the defaults it fills in."""
    stored = copy.deepcopy(container)
    default_container(stored)
    return stored


def ephemeral_containers(cluster: Cluster, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod's ephemeral containers as the API server has them now."""
    found = cluster.get(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
    return list(found["spec"].get("ephemeralContainers") or [])


def subresource_patches(stand: Stand) -> list[Any]:
    """PATCHes of pods/ephemeralcontainers this executor sent."""
    return [
        record
        for record in stand.server.requests
        if record.user == USER and record.subresource == "ephemeralcontainers"
    ]


def test_debugger_attaches_a_terminal_container_to_the_first_container(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    parameters = {"name": "debugger", "image": "busybox:1.36", "terminal": True}
    request = create_decided_event(stand.cluster, "sev-dbg", [pod], "debugger",
                                   parameters=parameters)  # fmt: skip

    reply = post_event(client, request)

    attributes, data = read_reply(reply.headers, reply.data)
    assert attributes["id"] == f"{make_request_id(request.security_event, request.steps)}/debugger"
    assert (attributes["action"], attributes["source"]) == ("debugger", "/amtd/executors/debugger")
    (execution,) = data["executions"]
    assert (execution["result"], execution["reason"]) == ("Succeeded", "DebugContainerAttached")
    name = make_container_name("debugger", request.steps[0].step_id)
    assert name.startswith("debugger-") and name in execution["message"]
    (container,) = ephemeral_containers(stand.cluster, pod)
    assert container == as_stored({"name": name, "image": "busybox:1.36", "stdin": True,
                                   "tty": True, "targetContainerName": "nginx"})  # fmt: skip
    found = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")
    (shown,) = found["status"]["ephemeralContainerStatuses"]
    assert shown["name"] == name and "running" in shown["state"]
    assert read_status(stand.cluster, "sev-dbg").phase == "Completed"
    (on_pod,) = wait_for_events_about(stand.cluster, "shop", pod["metadata"]["name"])
    assert on_pod["reason"] == "DebugContainerAttached"


def test_custom_action_attaches_its_whole_spec(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-custom", [pod], "customAction",
                                   parameters=CUSTOM)  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "DebugContainerAttached")
    (container,) = ephemeral_containers(stand.cluster, pod)
    name = make_container_name("forensics", request.steps[0].step_id)
    # every field kept, only the name derived
    assert container == as_stored({**CUSTOM, "name": name})
    assert [record.verb for record in subresource_patches(stand)] == ["patch"]


def test_a_redelivery_adds_nothing(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-again", [pod], "debugger",
                                   parameters={"image": "busybox"})  # fmt: skip
    first = only_execution(post_event(client, request))

    again = only_execution(post_event(client, request))

    assert again == first
    assert len(ephemeral_containers(stand.cluster, pod)) == 1
    assert len(subresource_patches(stand)) == 1
    assert len(read_status(stand.cluster, "sev-again").executions) == 1


def test_a_retry_after_the_record_was_lost_finds_its_container(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-lost", [pod], "customAction",
                                   parameters=CUSTOM)  # fmt: skip
    name = make_container_name("forensics", request.steps[0].step_id)
    patch = {"spec": {"ephemeralContainers": [{**CUSTOM, "name": name}]}}
    stand.cluster.patch(
        PODS, pod["metadata"]["name"], patch, "shop", kind="strategic", sub="ephemeralcontainers"
    )  # fmt: skip  (the first attempt's effect)

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "DebugContainerAttached")
    assert subresource_patches(stand) == []
    assert len(ephemeral_containers(stand.cluster, pod)) == 1


def test_a_container_of_our_name_with_another_spec_is_not_trusted(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-squat", [pod], "debugger",
                                   parameters={"image": "busybox"})  # fmt: skip
    name = make_container_name("amtd-debugger", request.steps[0].step_id)
    squatter = {"name": name, "image": "evil.example.com/implant"}
    stand.cluster.patch(PODS, pod["metadata"]["name"], {"spec": {"ephemeralContainers": [
        squatter]}}, "shop", kind="strategic", sub="ephemeralcontainers")  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Failed", "ContainerNameTaken")
    assert ephemeral_containers(stand.cluster, pod) == [as_stored(squatter)]


def test_protected_namespaces_are_left_alone(stand: Stand, client: FlaskClient) -> None:
    system_pod, _ = create_deployment(stand.cluster, "kube-system", "dns")
    request = create_decided_event(stand.cluster, "sev-system", [system_pod], "debugger",
                                   parameters={"image": "busybox"})  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Skipped", "ProtectedNamespace")
    assert ephemeral_containers(stand.cluster, system_pod) == []
    assert subresource_patches(stand) == []


def test_an_unsigned_step_is_refused_and_nothing_is_written(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-unsigned", [pod], "customAction",
                                   parameters=CUSTOM)  # fmt: skip
    unsigned = [step.model_copy(update={"signature": None}) for step in request.steps]

    reply = post_event(client, request.model_copy(update={"steps": unsigned}))

    assert (reply.status_code, reply.get_json()["error"]) == (403, "Unsigned")
    assert ephemeral_containers(stand.cluster, pod) == []
    assert read_status(stand.cluster, "sev-unsigned").executions == []
    assert [record for record in stand.server.requests if record.user == USER] == []


def test_one_unsigned_step_refuses_the_other_action_too(stand: Stand, client: FlaskClient) -> None:
    first, second = create_deployment(stand.cluster, "shop", "web")
    debugger = create_decided_event(stand.cluster, "sev-a", [first], "debugger",
                                    parameters={"image": "busybox"})  # fmt: skip
    custom = create_decided_event(stand.cluster, "sev-b", [second], "customAction",
                                  parameters=CUSTOM)  # fmt: skip
    forged = custom.steps[0].model_copy(update={"signature": None})
    mixed = ActionRequest(security_event=debugger.security_event,
                          steps=[*debugger.steps, forged])  # fmt: skip

    reply = post_event(client, mixed)

    assert reply.status_code == 403
    assert ephemeral_containers(stand.cluster, first) == []  # not half done


def test_privileged_containers_need_the_executors_opt_in(
    stand: Stand, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    privileged = {**CUSTOM, "securityContext": {"privileged": True}}
    request = create_decided_event(stand.cluster, "sev-priv", [pod], "customAction",
                                   parameters=privileged)  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Failed", "PrivilegeNotAllowed")
    assert "AMTD_DEBUG_ALLOW_PRIVILEGED" in execution["message"]
    assert ephemeral_containers(stand.cluster, pod) == []
    monkeypatch.setenv("AMTD_DEBUG_ALLOW_PRIVILEGED", "true")
    second = create_decided_event(stand.cluster, "sev-priv-ok", [pod], "customAction",
                                  parameters={**privileged, "name": "other"})  # fmt: skip
    allowed = only_execution(post_event(client, second))
    assert (allowed["result"], allowed["reason"]) == ("Succeeded", "DebugContainerAttached")


def test_a_spec_the_api_server_refuses_is_recorded_failed(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    ported = {**CUSTOM, "ports": [{"containerPort": 80}]}
    request = create_decided_event(stand.cluster, "sev-ports", [pod], "customAction",
                                   parameters=ported)  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Failed", "ApiRejected")
    assert "cannot be set for an Ephemeral Container" in execution["message"]
    assert ephemeral_containers(stand.cluster, pod) == []


def test_dry_run_changes_nothing(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-dry", [pod], "debugger",
                                   parameters={"image": "busybox"}, dry_run=True)  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert execution["result"] == "DryRun"
    assert "would attach ephemeral container amtd-debugger-" in execution["message"]
    assert ephemeral_containers(stand.cluster, pod) == []


def create_mixed_event(
    cluster: Cluster, name: str, pods: list[dict[str, Any]], actions: list[tuple[str, Any]]
) -> ActionRequest:
    """One SecurityEvent deciding a different action (and parameters) for each pod, signed."""
    created = create_security_event(cluster, name, targets=[
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}" for pod in pods])  # fmt: skip
    ref = refer_to_created(created)
    decisions = [
        make_decision(ref, f"shop/{pod['metadata']['name']}", pod["metadata"]["uid"], action,
                      {"parameters": parameters})
        for pod, (action, parameters) in zip(pods, actions, strict=True)
    ]  # fmt: skip
    return record_signed_decisions(cluster, ref, decisions)


def test_both_actions_in_one_event_over_real_http(stand: Stand) -> None:
    first, second = create_deployment(stand.cluster, "shop", "web")
    request = create_mixed_event(
        stand.cluster,
        "sev-both",
        [first, second],
        [("debugger", {"image": "busybox"}), ("customAction", CUSTOM)],
    )
    attributes = to_request_attributes(request)
    assert (attributes["amtddebugger"], attributes["amtdcustomaction"]) == ("true", "true")
    env = {"KUBECONFIG": str(stand.kubeconfig(USER)), "KUBERNETES_SERVICE_HOST": ""}
    headers, body = event_of(request)
    with serve_function("executors/debug", env) as url:
        reply = requests.post(url, headers=headers, data=body, timeout=60)
        again = requests.post(url, headers=headers, data=body, timeout=60)  # a redelivery
    assert (reply.status_code, again.status_code) == (200, 200), reply.text
    replied, data = read_reply(dict(reply.headers), reply.content)
    assert replied["action"] == "debugger,customAction"
    assert [item["action"] for item in data["executions"]] == ["debugger", "customAction"]
    assert read_reply(dict(again.headers), again.content)[1] == data
    for pod in (first, second):
        assert len(ephemeral_containers(stand.cluster, pod)) == 1
    assert [item.result for item in read_status(stand.cluster, "sev-both").executions] == [
        "Succeeded", "Succeeded"]  # fmt: skip
