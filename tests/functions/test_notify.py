"""The notify function in-process, confirming against the API server stand-in (official client)
and posting over real HTTP to a loopback receiver (support.receivers) for Slack, Teams and a
generic webhook. The receiver's URL carries a secret path: no answer and no log line may show it.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.model.actionevents import to_request_attributes
from amtd.notify.deadletternotices import NOTICE_TYPE, make_notice
from amtd.notify.notifications import Notification
from amtd.notify.payloads import values_of
from amtd.notify.settings import PLACEHOLDERS, SettingsError, read_settings
from support.cloudevents import as_binary
from support.executors import completed_event, create_decided_event
from support.functions import load_function_client
from support.receivers import Answer, Receiver, answers, run_sink
from support.standins import Stand, open_stand

SECRET_PATH = "/services/T0AMTD/B0NOTIFY/s3cr3t-webhook-path"


@pytest.fixture
def stand(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    """Our CRDs and amtd-system; in-process functions connect as ``notify``."""
    monkeypatch.setenv("AMTD_NAMESPACE", "amtd-system")
    with (
        open_stand(apiserver, kubeconfig.parent, ("amtd-system",)) as own,
        own.connect_functions("notify", monkeypatch),
    ):
        yield own


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback receiver answering 200 (as Slack and Teams do)."""
    own = Receiver(answers(Answer(200, body=b"ok")))
    yield own
    own.stop()


def notify_client(monkeypatch: pytest.MonkeyPatch, kind: str, url: str, **env: str) -> FlaskClient:
    """The function loaded with the Secret's values as env (read once, at start-up)."""
    settings = {"NOTIFY_KIND": kind, "NOTIFY_URL": url, "NOTIFY_TEMPLATE": "", "NOTIFY_TOKEN": ""}
    for name, value in {**settings, **env}.items():
        monkeypatch.setenv(name, value)
    return load_function_client("notify")


def set_message(cluster: Cluster, name: str, message: str) -> None:
    """Change the recorded Execution's message (what a notification shows)."""

    def change(current: dict[str, Any]) -> dict[str, Any]:
        executions = [{**current["status"]["executions"][0], "message": message}]
        return {**current["status"], "executions": executions}

    cluster.mutate_status(SECURITY_EVENTS, name, change)


def post(client: FlaskClient, attributes: dict[str, str], data: Any) -> Any:
    """POST one binary-mode CloudEvent, as the Broker delivers it."""
    headers, body = as_binary(attributes, data)
    return client.post("/", headers=headers, data=body)


def assert_secret_kept(response: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the answer nor any log line shows the webhook URL or its path."""
    assert SECRET_PATH not in response.get_data(as_text=True)
    assert "s3cr3t" not in caplog.text


def test_slack_gets_text_naming_pod_rule_policy_action_and_result(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    client = notify_client(monkeypatch, "slack", receiver.url + SECRET_PATH)
    attributes, data = completed_event(stand.cluster, "sev-slack")
    response = post(client, attributes, data)
    assert response.status_code == 204, response.get_data(as_text=True)
    [got] = receiver.requests
    assert got.path == SECRET_PATH
    assert got.headers["content-type"] == "application/json"
    text = json.loads(got.body)["text"]
    for part in ("delete", "Succeeded", "demo/sev-slack-pod", '"test"', "demo/policy#0",
                 "PodDeleted", "sev-slack"):  # fmt: skip
        assert part in text, (part, text)
    assert "authorization" not in got.headers  # the token is for the generic webhook only
    assert stand.calls_by("notify") == {("amtd.r6security.com", "securityevents", "", "get")}
    assert_secret_kept(response, caplog)


def test_teams_gets_an_adaptive_card(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = "$action $result on $target: $message"
    client = notify_client(
        monkeypatch, "teams", receiver.url + SECRET_PATH, NOTIFY_TEMPLATE=template
    )
    attributes, data = completed_event(stand.cluster, "sev-teams")
    set_message(stand.cluster, "sev-teams", "[click](http://evil) *now*")
    assert post(client, attributes, data).status_code == 204
    message = json.loads(receiver.requests[0].body)
    [attachment] = message["attachments"]
    assert message["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    [title, line] = [block["text"] for block in card["body"]]
    assert title == "amtd: moving-target defense acted"
    assert "demo/sev-teams-pod" in line and "Succeeded" in line
    # with the template "$message": a value makes no link and no emphasis
    assert line.endswith("\\[click\\]\\(http://evil\\) \\*now\\*"), line


def test_webhook_gets_fields_the_event_id_and_the_token(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = notify_client(monkeypatch, "webhook", receiver.url + SECRET_PATH, NOTIFY_TOKEN="t0k")
    attributes, data = completed_event(stand.cluster, "sev-hook", result="DryRun")
    assert post(client, attributes, data).status_code == 204
    got = receiver.requests[0]
    body = json.loads(got.body)
    assert body["id"] == attributes["id"] == got.headers["idempotency-key"]
    assert got.headers["authorization"] == "Bearer t0k"
    [fields] = body["notifications"]
    assert (fields["pod"], fields["namespace"], fields["action"], fields["result"]) == (
        "sev-hook-pod", "demo", "delete", "DryRun",
    )  # fmt: skip
    assert (fields["policy"], fields["ruleIndex"], fields["rule"]) == ("demo/policy", "0", "test")
    assert fields["securityEvent"] == "sev-hook"


def test_the_template_is_used_and_values_cannot_ping_a_slack_channel(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = "$pod: $action/$result by <https://ops.example|runbook> ($$5) $message"
    client = notify_client(monkeypatch, "slack", receiver.url, NOTIFY_TEMPLATE=template)
    attributes, data = completed_event(stand.cluster, "sev-tpl")
    set_message(stand.cluster, "sev-tpl", "<!channel> & <http://evil|x>")
    assert post(client, attributes, data).status_code == 204
    text = json.loads(receiver.requests[0].body)["text"]
    assert text == (
        "sev-tpl-pod: delete/Succeeded by <https://ops.example|runbook> ($5) "
        "&lt;!channel&gt; &amp; &lt;http://evil|x&gt;"
    )


def test_a_receiver_that_is_down_is_a_retried_503(
    stand: Stand, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = notify_client(monkeypatch, "slack", f"http://127.0.0.1:{port}{SECRET_PATH}")
    attributes, data = completed_event(stand.cluster, "sev-down")
    response = post(client, attributes, data)
    assert response.status_code == 503
    assert response.get_json()["error"] == "ReceiverUnavailable"
    assert str(port) not in response.get_data(as_text=True)
    assert_secret_kept(response, caplog)


@pytest.mark.parametrize(("status", "expected"), [(500, 503), (429, 503), (400, 422), (404, 422)])
def test_receiver_errors_are_retried_only_when_a_retry_can_help(
    stand: Stand, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    status: int, expected: int,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO)
    failing = Receiver(answers(Answer(status, body=f"no: {SECRET_PATH}".encode())))
    try:
        client = notify_client(monkeypatch, "webhook", failing.url + SECRET_PATH)
        attributes, data = completed_event(stand.cluster, f"sev-{status}")
        response = post(client, attributes, data)
    finally:
        failing.stop()
    assert response.status_code == expected
    error = "ReceiverUnavailable" if expected == 503 else "ReceiverRejected"
    assert response.get_json() == {
        "error": error, "detail": f"the webhook receiver answered HTTP {status}",
    }  # fmt: skip
    assert len(failing.requests) == 1  # the function never retries: the Broker does (or not)
    assert f"answered {status}" in caplog.text  # recorded in the log, body redacted
    assert_secret_kept(response, caplog)


def test_a_redirect_is_not_followed(
    stand: Stand, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    moving = Receiver(answers(Answer(307, headers={"Location": receiver.url + "/elsewhere"})))
    try:
        client = notify_client(monkeypatch, "webhook", moving.url, NOTIFY_TOKEN="t0k")
        attributes, data = completed_event(stand.cluster, "sev-moved")
        response = post(client, attributes, data)
    finally:
        moving.stop()
    assert response.status_code == 422
    assert receiver.requests == []  # the token never travelled on


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": "com.r6security.amtd.action.requested.v1"}, "UnsupportedEventType"),
        ({"data": {"securityEvent": {"name": "x"}, "executions": []}}, "InvalidCompletion"),
        (
            {"data": {"securityEvent": {"name": "x", "uid": "u"}, "executions": [{}]}},
            "InvalidCompletion",
        ),
        ({"data": ["not", "an", "object"]}, "InvalidCompletion"),
    ],
)
def test_a_malformed_event_is_a_400(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    change: dict[str, Any], error: str,
) -> None:  # fmt: skip
    client = notify_client(monkeypatch, "slack", receiver.url)
    attributes, data = completed_event(stand.cluster, "sev-bad", record=False)
    data = change.pop("data", data)
    response = post(client, {**attributes, **change}, data)
    assert (response.status_code, response.get_json()["error"]) == (400, error)
    assert receiver.requests == []


def test_a_body_that_is_not_a_cloudevent_is_a_400(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = notify_client(monkeypatch, "slack", receiver.url)
    response = client.post("/", json={"text": "hello"})
    assert (response.status_code, response.get_json()["error"]) == (400, "NotACloudEvent")


def test_an_execution_the_cluster_does_not_record_is_not_notified(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = notify_client(monkeypatch, "slack", receiver.url)
    attributes, data = completed_event(stand.cluster, "sev-forged", record=False)
    response = post(client, attributes, data)
    assert (response.status_code, response.get_json()["error"]) == (400, "UnconfirmedCompletion")
    assert "has no execution in SecurityEvent sev-forged" in response.get_json()["detail"]
    data["securityEvent"]["uid"] = "another-uid"
    assert post(client, attributes, data).get_json()["detail"].endswith("not another-uid")
    assert receiver.requests == []


def test_a_bad_template_is_answered_503_naming_it(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    client = notify_client(
        monkeypatch, "slack", receiver.url + SECRET_PATH, NOTIFY_TEMPLATE="$pod on $nodename"
    )
    attributes, data = completed_event(stand.cluster, "sev-tmpl")
    response = post(client, attributes, data)
    assert response.status_code == 503
    assert response.get_json()["error"] == "NotConfigured"
    assert "NOTIFY_TEMPLATE names $nodename" in response.get_json()["detail"]
    assert client.get("/health/liveness").status_code == 200  # no crash loop
    assert receiver.requests == []
    assert_secret_kept(response, caplog)


def test_notifications_off_answers_204_and_posts_nothing(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = notify_client(monkeypatch, "none", "")
    attributes, data = completed_event(stand.cluster, "sev-off")
    response = post(client, attributes, data)
    assert (response.status_code, response.headers["X-Amtd-Result"]) == (204, "off")
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"NOTIFY_KIND": "email"}, "NOTIFY_KIND 'email' is not one of"),
        ({"NOTIFY_KIND": "slack", "NOTIFY_URL": ""}, "NOTIFY_URL is empty"),
        ({"NOTIFY_KIND": "slack", "NOTIFY_URL": "ftp://h/s3cr3t"}, "http:// or https://"),
        (
            {"NOTIFY_KIND": "slack", "NOTIFY_URL": "https://h", "NOTIFY_TEMPLATE": "$ x"},
            "write $$ for a dollar sign",
        ),
        (
            {"NOTIFY_KIND": "slack", "NOTIFY_URL": "https://h", "NOTIFY_TIMEOUT_S": "60"},
            "NOTIFY_TIMEOUT_S must be",
        ),
    ],
)
def test_settings_that_can_never_work_are_refused_without_the_url(
    env: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        read_settings(env)
    assert problem in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


def test_settings_never_show_the_url_or_token() -> None:
    settings = read_settings(
        {"NOTIFY_KIND": "webhook", "NOTIFY_URL": "https://h/s3cr3t", "NOTIFY_TOKEN": "s3cr3t"}
    )
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings)


# Dead letters: the dead-letters function announces each one it records; notify reads it back.


def dead_letter_of(cluster: Cluster, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """An action.requested about a decided SecurityEvent, dead-lettered after a 500."""
    request = create_decided_event(cluster, name, [], "delete", targets=[f"demo/{name}-pod"])
    attributes = {
        **to_request_attributes(request),
        "knativeerrorcode": "500",
        "knativeerrordest": "http://executor-delete.amtd-system.svc.cluster.local",
    }
    return attributes, request.model_dump(by_alias=True, mode="json")


def test_a_recorded_dead_letter_is_announced_and_notified(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_sink() as sink:
        monkeypatch.setenv("K_SINK", sink.url)
        dead_letters = load_function_client("dead-letters")
        attributes, data = dead_letter_of(stand.cluster, "sev-lost")
        assert post(dead_letters, attributes, data).status_code == 204
        assert post(dead_letters, attributes, data).status_code == 204  # repeated: again
        notices = sink.received()
    assert len(notices) == 2 and notices[0]["id"] == notices[1]["id"]
    [recorded] = [e for e in stand.cluster.list(EVENTS, "default") if e["reason"] == "DeadLetter"]
    notice = notices[0]
    assert (notice["type"], notice["source"]) == (NOTICE_TYPE, "/amtd/dead-letters")
    assert notice["id"] == f"default/{recorded['metadata']['name']}"
    assert notice.get_data() == {"event": {"namespace": "default",
                                           "name": recorded["metadata"]["name"]}}  # fmt: skip
    client = notify_client(monkeypatch, "slack", receiver.url)
    assert post(client, notice.get_attributes(), notice.get_data()).status_code == 204
    text = json.loads(receiver.requests[0].body)["text"]
    assert text.startswith("amtd: DEAD LETTER on SecurityEvent sev-lost: ")
    assert "HTTP 500" in text and recorded["metadata"]["name"] in text


def test_a_dead_lettered_notice_is_recorded_but_not_announced(
    stand: Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_sink() as sink:
        monkeypatch.setenv("K_SINK", sink.url)
        dead_letters = load_function_client("dead-letters")
        attributes, data = make_notice({"metadata": {"namespace": "default", "name": "x.1"}})
        assert post(dead_letters, attributes, data).status_code == 204
        assert sink.received() == []  # no notice about a notice: no loop


def test_a_notice_the_broker_refuses_is_a_retried_503(
    stand: Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_sink() as sink:
        sink.status = 500
        monkeypatch.setenv("K_SINK", sink.url)
        dead_letters = load_function_client("dead-letters")
        response = post(dead_letters, *dead_letter_of(stand.cluster, "sev-unannounced"))
    assert (response.status_code, response.get_json()["error"]) == (503, "NotAnnounced")


@pytest.mark.parametrize(
    ("reference", "detail"),
    [
        ({"namespace": "default", "name": "nothing.0a1b"}, "does not exist"),
        ({"namespace": "kube-system", "name": "x.0a1b"}, "not recorded in kube-system"),
        ({"namespace": "default", "name": "someone-else.0a1b"}, "not a dead letter recorded by"),
    ],
)
def test_a_notice_without_its_dead_letter_event_is_not_notified(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    reference: dict[str, str], detail: str,
) -> None:  # fmt: skip
    other = {"metadata": {"name": "someone-else.0a1b", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
             "reason": "DeadLetter", "message": "fake", "source": {"component": "me"}}  # fmt: skip
    stand.cluster.create(EVENTS, other, "default")
    client = notify_client(monkeypatch, "webhook", receiver.url)
    attributes, _ = make_notice({"metadata": reference})
    response = post(client, attributes, {"event": reference})
    assert (response.status_code, response.get_json()["error"]) == (400, "UnconfirmedNotice")
    assert detail in response.get_json()["detail"]
    assert receiver.requests == []


def test_a_malformed_notice_is_a_400(
    stand: Stand, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = notify_client(monkeypatch, "webhook", receiver.url)
    attributes, _ = make_notice({"metadata": {"namespace": "default", "name": "x"}})
    response = post(client, attributes, {"event": {"name": "x"}})
    assert (response.status_code, response.get_json()["error"]) == (400, "InvalidNotice")


def test_every_placeholder_a_template_may_name_is_filled() -> None:
    # A template checked at start-up against PLACEHOLDERS must never render a "$name" literally.
    notification = Notification(*(f"v{i}" for i in range(14)))
    assert set(values_of(notification, "id-1")) == set(PLACEHOLDERS)
