"""Falco → delete, for each way a Falco alert arrives, through the whole chain.

Falco ``http_output`` JSON and the Falcosidekick webhook go to ingest-falco with the bearer
token; Falcosidekick's CloudEvents go to the Broker (Trigger ingest-falco-cloudevents) carrying
the token as the ``amtdtoken`` extension. Each must yield the Phoenix-shaped SecurityEvent, the
matcher's decision, the pod's deletion and replacement, and Events that kubectl describe shows.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from support.builders import SHELL_RULE, create_policy, falco_alert
from support.stacks import (
    KUBECTL,
    LiveStack,
    create_workload,
    falcosidekick_cloudevent,
    is_gone,
    pick,
    wait_for,
    wait_for_executions,
    wait_for_running,
    wait_for_security_event,
)

pytestmark = pytest.mark.e2e
FORMATS = ("http-output", "webhook", "cloudevents")
CLOUDEVENTS_TRIGGER = "amtd-system/ingest-falco-cloudevents"
MATCHER_TRIGGER = "amtd-system/matcher-securityevents"


def send(live: LiveStack, form: str, alert: dict[str, Any]) -> None:
    """Deliver the alert the way its sender does; check the first hop accepted it."""
    if form != "cloudevents":
        answer = live.post_alert("ingest-falco", json.dumps(alert))
        assert (answer.status_code, answer.json()["result"]) == (201, "created"), answer.text
        return
    headers, body = falcosidekick_cloudevent(alert, live.token)
    assert live.post_to_broker(headers, body).status_code == 202
    attempts = wait_for(
        lambda: live.deliveries(headers["ce-id"], CLOUDEVENTS_TRIGGER),
        f"the Trigger {CLOUDEVENTS_TRIGGER} to deliver the alert",
    )
    assert [a.status for a in attempts] == [202]  # created; a CloudEvent gets no body


@pytest.mark.parametrize("form", FORMATS)
def test_falco_alert_deletes_the_pod_and_the_deployment_replaces_it(
    live: LiveStack, form: str
) -> None:
    namespace = f"falco-{form}"
    victim = create_workload(live.cluster, namespace, "web")[0]["metadata"]["name"]
    rule = {"type": SHELL_RULE, "source": "FalcoIntegrator"}
    create_policy(live.cluster, namespace, [(rule, "delete")])
    target = f"{namespace}/{victim}"
    alert = falco_alert(
        namespace,
        victim,
        at=datetime.now(UTC),
        uuid=None if form == "http-output" else str(uuid.uuid4()),
    )

    send(live, form, alert)

    event = wait_for_security_event(live.cluster, target)
    assert event["spec"]["targets"] == [target]
    assert event["spec"]["description"] == alert["output"]
    rule = event["spec"]["rule"]
    assert pick(rule, "type", "threatLevel", "source") == (SHELL_RULE, "Notice", "FalcoIntegrator")
    wait_for(lambda: is_gone(live.cluster, namespace, victim), f"pod {target} to be deleted")
    wait_for_running(live.cluster, namespace, "web", 2, excluding=[victim])
    assert_completed_delete(live, event["metadata"]["name"], target)
    assert_sent_by_reference(live)
    assert_described(live, event["metadata"]["name"], target)


def assert_completed_delete(live: LiveStack, name: str, target: str) -> None:
    """The status records the matcher's decision and the executor's deletion."""
    status = wait_for_executions(live.cluster, name)["status"]
    assert pick(status, "phase", "action") == ("Completed", "delete")
    (decision,) = status["decisions"]
    assert pick(decision, "outcome", "action", "target") == ("Matched", "delete", target)
    assert decision["policy"] == f"{target.split('/')[0]}/defence"
    (execution,) = status["executions"]
    expected = ("Succeeded", "PodDeleted", decision["stepId"])
    assert pick(execution, "result", "reason", "stepId") == expected


def assert_sent_by_reference(live: LiveStack) -> None:
    """The shipped ApiServerSource (Reference mode) names each SecurityEvent in its events: the
    object itself never rides the Broker, however large it grows."""
    sent = {a.event_type for a in live.stack.attempts if a.subscriber == MATCHER_TRIGGER}
    assert sent == {"dev.knative.apiserver.ref.add"}


def assert_described(live: LiveStack, name: str, target: str) -> None:
    """``kubectl describe securityevent NAME`` shows the decision and the deletion in the status;
    ``kubectl get events -n NAMESPACE`` shows the executor's Event on the deleted pod."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: cannot check `kubectl describe`")
    shown = live.kubectl("describe", "securityevent", name).stdout
    status = shown.split("Status:", 1)[1].split("Events:", 1)[0]
    assert "Decisions:" in status and "Executions:" in status and "PodDeleted" in status
    namespace, pod = target.split("/")
    selector = f"involvedObject.name={pod}"

    def on_pod() -> str | None:
        listed = live.kubectl("get", "events", "-n", namespace, "--field-selector", selector)
        return listed.stdout if "PodDeleted" in listed.stdout else None

    assert f"delete Succeeded: deleted pod {target}" in wait_for(on_pod, f"an Event on {target}")
