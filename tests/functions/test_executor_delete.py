"""executor-delete against the API stand-in: effects, guards, exactly-once, audit, status codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.act.delete.performing import read_back_outcome
from amtd.kube.api import PODS, SECURITY_EVENTS
from amtd.kube.apierrors import ConflictError, TransientError
from amtd.model.actionevents import ACTION_COMPLETED, make_request_id
from support.cloudevents import read_reply
from support.executors import (
    create_decided_event,
    event_of,
    list_events_about,
    only_execution,
    post_event,
    read_status,
    wait_for_events_about,
)
from support.fixtures import connected_client_fixture
from support.functions import load_function_client
from support.standins import Stand, create_deployment, create_pod, wait_for_pods

USER = "executor-delete"


client = connected_client_fixture("executors/delete", USER)


def pod_deletes(stand: Stand) -> list[Any]:
    """DELETE calls on pods this executor sent."""
    return [
        record
        for record in stand.server.requests
        if record.user == USER and record.resource == "pods" and record.verb == "delete"
    ]


def test_deletes_the_pod_and_the_workload_replaces_it(stand: Stand, client: FlaskClient) -> None:
    first, second = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-delete", [first], "delete")

    reply = post_event(client, request)

    assert reply.status_code == 200
    attributes, data = read_reply(reply.headers, reply.data)
    assert attributes["type"] == ACTION_COMPLETED
    assert attributes["id"] == f"{make_request_id(request.security_event, request.steps)}/delete"
    assert attributes["source"] == "/amtd/executors/delete"
    assert data["securityEvent"]["name"] == "sev-delete"
    execution = data["executions"][0]
    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodDeleted")
    assert execution["executor"] == USER
    old_name = first["metadata"]["name"]
    assert stand.cluster.find(PODS, old_name, "shop") is None
    pods = wait_for_pods(stand.cluster, "shop", "app=web", 2)
    assert old_name not in {pod["metadata"]["name"] for pod in pods}
    assert second["metadata"]["name"] in {pod["metadata"]["name"] for pod in pods}
    status = read_status(stand.cluster, "sev-delete")
    assert status.phase == "Completed"
    assert [item.reason for item in status.executions] == ["PodDeleted"]


def test_events_go_on_the_pod_and_only_warnings_on_the_security_event(
    stand: Stand, client: FlaskClient
) -> None:  # fmt: skip
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    done = create_decided_event(stand.cluster, "sev-done", [pod], "delete")
    lonely = create_pod(stand.cluster, "shop", "lonely", {"app": "lonely"})  # no controller
    not_done = create_decided_event(stand.cluster, "sev-warn", [lonely], "delete")

    assert only_execution(post_event(client, done))["reason"] == "PodDeleted"
    assert only_execution(post_event(client, not_done))["reason"] == "StandalonePod"

    (on_pod,) = wait_for_events_about(stand.cluster, "shop", pod["metadata"]["name"])
    assert on_pod["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert (on_pod["reason"], on_pod["type"]) == ("PodDeleted", "Normal")
    assert "delete Succeeded" in on_pod["message"]
    (on_event,) = wait_for_events_about(stand.cluster, "default", "sev-warn")
    assert (on_event["reason"], on_event["type"]) == ("StandalonePod", "Warning")
    assert on_event["involvedObject"]["kind"] == "SecurityEvent"
    assert on_event["involvedObject"]["apiVersion"] == "amtd.r6security.com/v1beta1"
    assert on_event["involvedObject"]["uid"] == not_done.security_event.uid
    (warned,) = wait_for_events_about(stand.cluster, "shop", "lonely")
    assert (warned["reason"], warned["type"]) == ("StandalonePod", "Warning")
    # one worker writes Events in order: sev-done's would be there by now; the status tells it
    assert list_events_about(stand.cluster, "default", "sev-done") == []


def test_a_duplicate_has_one_effect_and_one_record(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-dup", [pod], "delete")

    replies = [post_event(client, request, structured=index == 1) for index in range(3)]

    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert {only_execution(reply)["reason"] for reply in replies} == {"PodDeleted"}
    assert len(pod_deletes(stand)) == 1
    assert len(read_status(stand.cluster, "sev-dup").executions) == 1
    assert len(wait_for_events_about(stand.cluster, "shop", pod["metadata"]["name"])) == 1


def test_a_replay_after_restart_does_nothing(
    stand: Stand, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-replay", [pod], "delete")
    assert post_event(client, request).status_code == 200
    wait_for_pods(stand.cluster, "shop", "app=web", 2)
    wait_for_events_about(stand.cluster, "shop", pod["metadata"]["name"])  # the first's last write
    stand.server.clear_requests()

    with stand.connect_functions(USER, monkeypatch):  # a new connection, a freshly loaded function
        reply = post_event(load_function_client("executors/delete"), request)

    assert reply.status_code == 200
    assert only_execution(reply)["reason"] == "PodDeleted"
    sent = {(r.resource, r.verb) for r in stand.server.requests if r.user == USER}
    assert sent == {("securityevents", "get")}
    assert len(read_status(stand.cluster, "sev-replay").executions) == 1


def test_a_pod_already_gone_counts_as_deleted(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-gone", [pod], "delete")
    stand.cluster.delete(PODS, pod["metadata"]["name"], "shop")

    reply = post_event(client, request)

    assert reply.status_code == 200
    execution = only_execution(reply)
    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodAlreadyGone")
    assert read_status(stand.cluster, "sev-gone").phase == "Completed"


def test_a_namesake_is_not_deleted(stand: Stand, client: FlaskClient) -> None:
    pod = create_pod(stand.cluster, "shop", "db-0", labels={"app": "db-0"})
    request = create_decided_event(
        stand.cluster, "sev-namesake", [pod], "delete", allow_standalone_pods=True
    )
    stand.cluster.delete(PODS, "db-0", "shop")
    namesake = create_pod(stand.cluster, "shop", "db-0", labels={"app": "db-0"})

    reply = post_event(client, request)

    execution = only_execution(reply)
    assert (execution["result"], execution["reason"]) == ("Skipped", "PodReplaced")
    assert namesake["metadata"]["uid"] in execution["message"]
    assert stand.cluster.get(PODS, "db-0", "shop")["metadata"]["uid"] == namesake["metadata"]["uid"]
    assert pod_deletes(stand) == []


def test_protected_namespaces_are_left_alone(
    stand: Stand, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_pod, _ = create_deployment(stand.cluster, "kube-system", "dns")
    shop_pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-system", [system_pod], "delete")

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Skipped", "ProtectedNamespace")
    assert stand.cluster.find(PODS, system_pod["metadata"]["name"], "kube-system") is not None
    monkeypatch.setenv("PROTECTED_NAMESPACES", "shop")
    request = create_decided_event(stand.cluster, "sev-shop", [shop_pod], "delete")
    assert only_execution(post_event(client, request))["reason"] == "ProtectedNamespace"
    # the list adds to the system namespaces: kube-system stays protected
    request = create_decided_event(stand.cluster, "sev-system-2", [system_pod], "delete")
    assert only_execution(post_event(client, request))["reason"] == "ProtectedNamespace"
    assert pod_deletes(stand) == []


@pytest.mark.parametrize("structured", [False, True])
def test_an_unencodable_string_in_the_request_is_400_and_nothing_is_deleted(
    stand: Stand, client: FlaskClient, structured: bool
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-surrogate", [pod], "delete")
    headers, body = event_of(request, structured)
    forged = body.replace(b'"sev-surrogate"', b'"sev-surrogate\\ud800"', 1)
    assert forged != body
    response = client.post("/", headers=headers, data=forged)
    assert response.status_code == 400 and response.get_json()["error"] == "InvalidUnicode"
    assert pod_deletes(stand) == []


def test_standalone_pods_need_an_opt_in(stand: Stand, client: FlaskClient) -> None:
    lone = create_pod(stand.cluster, "shop", "lone", labels={"app": "lone"})
    refused = create_decided_event(stand.cluster, "sev-lone", [lone], "delete")
    allowed = create_decided_event(
        stand.cluster, "sev-lone-ok", [lone], "delete", allow_standalone_pods=True
    )

    skipped = only_execution(post_event(client, refused))
    assert (skipped["result"], skipped["reason"]) == ("Skipped", "StandalonePod")
    assert stand.cluster.find(PODS, "lone", "shop") is not None
    done = only_execution(post_event(client, allowed))
    assert (done["result"], done["reason"]) == ("Succeeded", "PodDeleted")
    assert stand.cluster.find(PODS, "lone", "shop") is None


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(
        stand.cluster, "sev-dry", [pod], "delete", dry_run=True,
        parameters={"gracePeriodSeconds": 5},
    )  # fmt: skip

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("DryRun", "DryRun")
    name = pod["metadata"]["name"]
    assert f"would delete pod shop/{name}" in execution["message"]
    assert "grace period of 5 s" in execution["message"]
    current = stand.cluster.get(PODS, name, "shop")
    assert "amtd.r6security.com/claimed-by" not in current["metadata"].get("annotations", {})
    assert pod_deletes(stand) == []
    assert read_status(stand.cluster, "sev-dry").executions[0].result == "DryRun"


def test_the_grace_period_is_passed_on(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(
        stand.cluster, "sev-grace", [pod], "delete", parameters={"gracePeriodSeconds": 0}
    )

    assert only_execution(post_event(client, request))["reason"] == "PodDeleted"
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


def test_a_gone_security_event_skips_its_steps(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-withdrawn", [pod], "delete")
    stand.cluster.delete(SECURITY_EVENTS, "sev-withdrawn")

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Skipped", "SecurityEventGone")
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None


def test_events_without_delete_steps_get_no_content(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-other", [pod], "quarantine")

    reply = post_event(client, request)

    assert reply.status_code == 204
    assert reply.data == b""


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"Content-Type": "application/json"}, b"{}", "NotACloudEvent"),
        (
            {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": "other.type",
             "Content-Type": "application/json"},
            b"{}",
            "UnexpectedEventType",
        ),
        (
            {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x",
             "ce-type": "com.r6security.amtd.action.requested.v1",
             "Content-Type": "application/json"},
            b'{"securityEvent": {"name": "x"}, "steps": []}',
            "InvalidActionRequest",
        ),
    ],
)  # fmt: skip
def test_bad_events_are_rejected_with_400(
    client: FlaskClient, headers: dict[str, str], body: bytes, error: str
) -> None:
    reply = client.post("/", headers=headers, data=body)

    assert reply.status_code == 400
    assert reply.json is not None
    assert reply.json["error"] == error
    assert reply.json["detail"]


def test_bad_parameters_are_rejected_with_400(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(
        stand.cluster, "sev-bad", [pod], "delete", parameters={"gracePeriodSeconds": -1}
    )

    reply = post_event(client, request)

    assert reply.status_code == 400
    assert reply.json is not None
    assert reply.json["error"] == "InvalidActionStep"
    assert "gracePeriodSeconds" in reply.json["detail"]
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None


def test_an_unavailable_api_server_answers_503(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-down", [pod], "delete")
    stand.server.inject_faults(1.0, statuses=(503,), match=lambda record: record.user == USER)

    reply = post_event(client, request)

    assert reply.status_code == 503
    assert reply.json is not None
    assert reply.json["error"] == "ApiUnavailable"
    stand.server.clear_faults()
    assert only_execution(post_event(client, request))["reason"] == "PodDeleted"


def test_a_delete_whose_answer_is_lost_is_read_back_and_recorded_as_its_own(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-lost", [pod], "delete")
    # the stand-in carries the DELETE out, then closes the connection without an answer
    stand.server.inject_faults(
        1.0, statuses=(), drop=True, match=lambda r: r.user == USER and r.verb == "delete"
    )

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodDeleted")
    assert "answer was lost" in execution["message"]
    assert [r.fault for r in pod_deletes(stand)] == ["drop"]  # sent once, never repeated blind
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


def test_a_lost_answer_is_judged_by_what_the_pod_shows(stand: Stand) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    name = pod["metadata"]["name"]
    lost = TransientError(0, "Unreachable", "connection closed without an answer")
    with pytest.raises(TransientError):  # untouched: the call never reached it, retry later
        read_back_outcome(stand.cluster, pod, "deleted", "PodDeleted", lost)
    stand.cluster.patch(PODS, name, {"metadata": {"labels": {"seen": "yes"}}}, "shop")
    with pytest.raises(ConflictError):  # changed: judged again
        read_back_outcome(stand.cluster, pod, "deleted", "PodDeleted", lost)
    stand.cluster.delete(PODS, name, "shop")
    verdict = read_back_outcome(stand.cluster, pod, "deleted", "PodDeleted", lost)
    assert (verdict.result, verdict.reason) == ("Succeeded", "PodDeleted")


def test_health_endpoints(client: FlaskClient) -> None:
    assert client.get("/health/liveness").status_code == 200
    assert client.get("/health/readiness").status_code == 200


def test_readiness_fails_without_a_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amtd.kube import api as kubeapi

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeapi.reset_shared_cluster()
    try:
        reply = load_function_client("executors/delete").get("/health/readiness")
    finally:
        kubeapi.reset_shared_cluster()
    assert reply.status_code == 503
    assert reply.json is not None
    assert reply.json["error"] == "NotReady"


def test_a_refused_delete_is_recorded_as_failed(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-refused", [pod], "delete")
    stand.server.inject_faults(
        1.0, statuses=(403,), match=lambda record: record.user == USER and record.verb == "delete"
    )

    reply = post_event(client, request)

    assert reply.status_code == 200
    execution = only_execution(reply)
    assert (execution["result"], execution["reason"]) == ("Failed", "ApiRejected")
    assert "403" in execution["message"]
    assert read_status(stand.cluster, "sev-refused").phase == "Failed"
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None


def test_a_step_the_matcher_never_decided_is_refused(stand: Stand, client: FlaskClient) -> None:
    """A forged event naming a real SecurityEvent cannot delete another pod."""
    decided, bystander = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-forged", [decided], "delete")
    step = request.steps[0]
    forged_step = step.model_copy(
        update={"target": f"shop/{bystander['metadata']['name']}",
                "pod_uid": bystander["metadata"]["uid"]}
    )  # fmt: skip
    forged = request.model_copy(update={"steps": [forged_step]})

    reply = post_event(client, forged)

    assert (reply.status_code, reply.get_json()["error"]) == (403, "InvalidSignature")
    assert stand.cluster.find(PODS, bystander["metadata"]["name"], "shop") is not None
    assert pod_deletes(stand) == []
    assert read_status(stand.cluster, "sev-forged").executions == []


def test_a_decided_step_with_altered_guards_is_refused(stand: Stand, client: FlaskClient) -> None:
    """Flipping allowStandalonePods (or dryRun) in transit does not widen what may be done."""
    pod = create_pod(stand.cluster, "shop", "lonely")
    request = create_decided_event(stand.cluster, "sev-altered", [pod], "delete")
    altered_step = request.steps[0].model_copy(update={"allow_standalone_pods": True})
    altered = request.model_copy(update={"steps": [altered_step]})

    reply = post_event(client, altered)

    assert (reply.status_code, reply.get_json()["error"]) == (403, "InvalidSignature")
    assert stand.cluster.find(PODS, "lonely", "shop") is not None


def test_a_step_that_fails_for_now_leaves_the_others_recorded(
    stand: Stand, client: FlaskClient
) -> None:
    pods = create_deployment(stand.cluster, "shop", "web", 3)
    request = create_decided_event(stand.cluster, "sev-partial", pods, "delete")
    failing = pods[1]["metadata"]["name"]
    stand.server.inject_faults(1.0, statuses=(503,), match=lambda r: r.verb == "delete"
                               and r.resource == "pods" and r.name == failing)  # fmt: skip
    assert post_event(client, request).status_code == 503  # the Broker retries
    recorded = {item.target: item.reason for item in read_status(stand.cluster, "sev-partial")
                .executions}  # fmt: skip
    others = {f"shop/{pod['metadata']['name']}" for pod in pods} - {f"shop/{failing}"}
    assert recorded == dict.fromkeys(others, "PodDeleted")  # acted, so recorded before the 503
    stand.server.clear_faults()
    assert post_event(client, request).status_code == 200  # the retry does only what is left
    status = read_status(stand.cluster, "sev-partial")
    assert sorted(item.reason for item in status.executions) == ["PodDeleted"] * 3
    assert len([r for r in pod_deletes(stand) if r.status == 200]) == 3
