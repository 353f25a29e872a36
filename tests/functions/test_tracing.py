"""Tracing (docs/tracing.md): each function as its own process over real HTTP against the API
stand-in, exporting OTLP/HTTP to a local receiver; spans, attributes and parent links read from
the decoded ExportTraceServiceRequest. Forged trace context is ignored; off loads no SDK."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
import requests

from amtd.kube.api import SECURITY_EVENTS
from amtd.model.actionevents import to_request_attributes
from amtd.model.traces import TRACEPARENT_ANNOTATION
from amtd_stack.running.traces import ReceivedSpan, read_ids, tracing_env
from support.builders import FALCO_ALERT, falco_alert, kubearmor_alert, make_security_event
from support.cloudevents import as_binary, read_reply
from support.executors import create_decided_event
from support.functions import ROOT, serve_function
from support.ingesting import PING, TOKEN, bearer, security_events
from support.matching import apiserver_event
from support.standins import Stand, create_deployment, install_phoenix_sample, list_pods
from support.traces import TraceReceiver, run_trace_receiver

SERVER_KIND = 2  # OTLP SPAN_KIND_SERVER
FORGED = [
    "00-" + "a" * 32 + "-" + "b" * 16 + "-01" + "-extra",  # too long for version 00
    "00-" + "A" * 32 + "-" + "B" * 16 + "-01",  # upper-case hex
    "00-" + "0" * 32 + "-" + "b" * 16 + "-01",  # the invalid trace id
    "00-" + "a" * 32 + "-" + "0" * 16 + "-01",  # the invalid span id
    "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",  # the forbidden version
    "00-" + "a" * 32 + "-" + "b" * 16 + "-01" + "-x" * 4000,  # oversized
    "00_" + "a" * 32 + "_" + "b" * 16 + "_01",
]


def make_traceparent() -> tuple[str, str, str]:
    """A fresh valid traceparent, its trace id and its span id."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def only(spans: list[ReceivedSpan]) -> ReceivedSpan:
    """The one span of a list."""
    assert len(spans) == 1, spans
    return spans[0]


def assert_child_of(span: ReceivedSpan, parent: tuple[str, str], service: str) -> None:
    """``span`` is ``service``'s server span, child of the remote ``(trace id, span id)``."""
    assert (span.trace_id, span.parent_span_id) == parent
    assert (span.service, span.kind) == (service, SERVER_KIND)


def ingest_env(stand: Stand, receiver: TraceReceiver) -> dict[str, str]:
    """ingest-falco's environment, traced to ``receiver``."""
    kubeconfig = str(stand.kubeconfig("ingest-falco"))
    return {"KUBECONFIG": kubeconfig, "INGEST_TOKEN": TOKEN, **tracing_env(receiver.url)}


def test_ingest_continues_the_callers_trace_and_annotates_the_security_event(
    stand: Stand,
) -> None:
    traceparent, trace_id, caller_span = make_traceparent()
    with (
        run_trace_receiver() as receiver,
        serve_function("ingest-falco", ingest_env(stand, receiver)) as url,
    ):
        headers = {**bearer(), "traceparent": traceparent, "tracestate": "vendor=abc"}
        answer = requests.post(url, json=FALCO_ALERT, headers=headers, timeout=30)
        request_span = only(receiver.wait_for_spans("amtd.ingest.request"))
        alert_span = only(receiver.wait_for_spans("amtd.ingest.alert"))
    assert answer.status_code == 201, answer.text
    assert (request_span.trace_id, request_span.parent_span_id) == (trace_id, caller_span)
    assert request_span.service == "ingest-falco"
    assert request_span.kind == SERVER_KIND
    assert request_span.attributes["http.response.status_code"] == 201
    assert request_span.attributes["amtd.source"] == "ingest-falco"
    assert (alert_span.trace_id, alert_span.parent_span_id) == (trace_id, request_span.span_id)
    name = answer.json()["name"]
    assert alert_span.attributes == {
        "amtd.source": "ingest-falco", "amtd.result": "created", "amtd.securityevent": name,
    }  # fmt: skip
    created = stand.cluster.get(SECURITY_EVENTS, name)
    assert read_ids(created["metadata"]["annotations"][TRACEPARENT_ANNOTATION]) == alert_span.ids


def test_each_alert_of_a_batch_is_a_span_of_the_request(stand: Stand) -> None:
    env = {"KUBECONFIG": str(stand.kubeconfig("ingest-kubearmor")), "INGEST_TOKEN": TOKEN}
    pods = ("cart-6b8f7d9c4-aaaaa", "cart-6b8f7d9c4-bbbbb")
    alerts = [*(kubearmor_alert(pod=pod) for pod in pods),
              kubearmor_alert(Type="SystemEvent", PolicyName=None)]  # fmt: skip
    with (
        run_trace_receiver() as receiver,
        serve_function("ingest-kubearmor", {**env, **tracing_env(receiver.url)}) as url,
    ):
        body = "\n".join(json.dumps(alert) for alert in alerts)
        headers = {**bearer(), "Content-Type": "application/x-ndjson"}
        answer = requests.post(url, data=body, headers=headers, timeout=30)
        request_span = only(receiver.wait_for_spans("amtd.ingest.request"))
        alert_spans = receiver.wait_for_spans("amtd.ingest.alert", 3)
    assert answer.status_code == 200, answer.text
    assert request_span.service == "ingest-kubearmor"
    assert {span.parent_span_id for span in alert_spans} == {request_span.span_id}
    results = sorted(span.attributes["amtd.result"] for span in alert_spans)
    assert results == ["created", "created", "ignored"]


def test_a_refused_request_is_traced_with_its_status(stand: Stand) -> None:
    with (
        run_trace_receiver() as receiver,
        serve_function("ingest-falco", ingest_env(stand, receiver)) as url,
    ):
        answer = requests.post(url, json=FALCO_ALERT, timeout=30)  # no token
        span = only(receiver.wait_for_spans("amtd.ingest.request"))
        assert receiver.named("amtd.ingest.alert") == []
    assert answer.status_code == 401
    assert span.attributes["http.response.status_code"] == 401


def test_forged_traceparent_headers_are_ignored(stand: Stand) -> None:
    with (
        run_trace_receiver() as receiver,
        serve_function("ingest-falco", ingest_env(stand, receiver)) as url,
    ):
        for number, forged in enumerate(FORGED):
            alert = falco_alert(pod=f"cart-6b8f7d9c4-f{number:04d}")
            headers = {**bearer(), "traceparent": forged, "tracestate": "x" * 600}
            answer = requests.post(url, json=alert, headers=headers, timeout=30)
            assert answer.status_code == 201, (forged, answer.text)
        spans = receiver.wait_for_spans("amtd.ingest.request", len(FORGED))
        alert_spans = receiver.wait_for_spans("amtd.ingest.alert", len(FORGED))
    assert len(spans) == len(FORGED)
    assert all(span.parent_span_id == "" for span in spans)  # each a new trace
    assert len({span.trace_id for span in spans}) == len(FORGED)
    assert not {span.trace_id for span in spans} & {"a" * 32, "0" * 32}
    annotations = [read_ids(event["metadata"]["annotations"][TRACEPARENT_ANNOTATION])
                   for event in security_events(stand.cluster)]  # fmt: skip
    assert sorted(annotations) == sorted(span.ids for span in alert_spans)


def create_annotated_event(stand: Stand, traceparent: str) -> dict[str, Any]:
    """A SecurityEvent about a Phoenix sample pod, its annotation saying ``traceparent``."""
    install_phoenix_sample(stand.cluster)
    pod = list_pods(stand.cluster, "demo", "app=nginx")[0]
    manifest = make_security_event(pods=[pod], rule_type="network-attack")
    manifest["metadata"]["annotations"] = {TRACEPARENT_ANNOTATION: traceparent}
    return stand.cluster.create(SECURITY_EVENTS, manifest)


def post_traced(
    function: str, env: dict[str, str], event: tuple[dict[str, str], bytes], span: str
) -> tuple[requests.Response, ReceivedSpan]:
    """POST one binary-mode ``event`` to ``functions/<function>`` tracing to a fresh receiver;
    its answer and its one span named ``span``."""
    headers, body = event
    with (
        run_trace_receiver() as receiver,
        serve_function(function, {**env, **tracing_env(receiver.url)}) as url,
    ):
        answer = requests.post(url, headers=headers, data=body, timeout=60)
        return answer, only(receiver.wait_for_spans(span))


def decide(stand: Stand, traceparent: str) -> tuple[requests.Response, ReceivedSpan]:
    """The matcher's answer to a new SecurityEvent annotated ``traceparent``, and its span."""
    event = as_binary(*apiserver_event(create_annotated_event(stand, traceparent)))
    env = {"KUBECONFIG": str(stand.kubeconfig("matcher"))}
    return post_traced("matcher", env, event, "amtd.decide")


def test_the_matcher_span_is_a_child_of_the_annotation_and_the_request_carries_it(
    stand: Stand,
) -> None:
    traceparent, trace_id, ingest_span = make_traceparent()
    answer, span = decide(stand, traceparent)
    assert answer.status_code == 200, answer.text
    assert_child_of(span, (trace_id, ingest_span), "matcher")
    assert span.attributes["amtd.outcome"] == "Decided"
    assert (span.attributes["amtd.targets"], span.attributes["amtd.steps"]) == (1, 1)
    attributes, _ = read_reply(dict(answer.headers), answer.content)
    assert span.attributes["amtd.request.id"] == attributes["id"]
    assert read_ids(attributes["traceparent"]) == span.ids  # the executors' parent


def test_a_forged_annotation_starts_a_new_trace(stand: Stand) -> None:
    answer, span = decide(stand, "00-" + "a" * 32 + "-" + "b" * 16 + "-01;evil")
    assert answer.status_code == 200, answer.text
    assert span.parent_span_id == ""
    assert span.trace_id != "a" * 32


def execute(stand: Stand, traceparent: str) -> tuple[requests.Response, ReceivedSpan]:
    """executor-delete's answer to a request for two pods carrying ``traceparent``; its span."""
    pods = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, f"sev-{secrets.token_hex(4)}", pods, "delete")
    data = request.model_dump(by_alias=True, mode="json")
    event = as_binary({**to_request_attributes(request), "traceparent": traceparent}, data)
    env = {"KUBECONFIG": str(stand.kubeconfig("executor-delete")), "KUBERNETES_SERVICE_HOST": ""}
    return post_traced("executors/delete", env, event, "amtd.execute")


def test_the_executor_span_is_a_child_of_the_events_traceparent(stand: Stand) -> None:
    traceparent, trace_id, matcher_span = make_traceparent()
    answer, span = execute(stand, traceparent)
    assert answer.status_code == 200, answer.text
    assert_child_of(span, (trace_id, matcher_span), "executor-delete")
    assert span.attributes["amtd.executor"] == "executor-delete"
    assert span.attributes["amtd.actions"] == ["delete"]
    assert span.attributes["amtd.steps"] == 2
    assert span.attributes["amtd.results"] == ["Succeeded", "Succeeded"]
    assert span.attributes["amtd.reasons"] == ["PodDeleted", "PodDeleted"]
    attributes, _ = read_reply(dict(answer.headers), answer.content)
    assert attributes["type"].endswith("action.completed.v1")
    assert read_ids(attributes["traceparent"]) == span.ids


def test_a_forged_event_traceparent_starts_a_new_trace(stand: Stand) -> None:
    answer, span = execute(stand, "00-" + "0" * 32 + "-" + "b" * 16 + "-01")
    assert answer.status_code == 200, answer.text
    assert span.parent_span_id == ""
    assert span.trace_id != "0" * 32


def test_a_ping_is_a_span_of_the_pings_trace(stand: Stand) -> None:
    traceparent, trace_id, source_span = make_traceparent()
    event = as_binary({**PING, "traceparent": traceparent}, {"task": "timer"})
    env = {"KUBECONFIG": str(stand.kubeconfig("timer"))}
    answer, span = post_traced("timer", env, event, "amtd.ping")
    assert answer.status_code == 204, answer.text
    assert_child_of(span, (trace_id, source_span), "timer")
    assert span.attributes["http.response.status_code"] == 204


LOADED = """
import json, sys
import functions_framework
app = functions_framework.create_app({target!r}, {source!r}, "http")
answer = app.test_client().post("/", json={{}})
sdk = sorted(name for name in ("opentelemetry.sdk", "opentelemetry.trace", "pydantic")
             if name in sys.modules)
print("RESULT", json.dumps({{"status": answer.status_code, "loaded": sdk}}), flush=True)
"""


def load_in_subprocess(function: str, target: str, env: dict[str, str]) -> dict[str, Any]:
    """Import ``functions/<function>`` in a fresh interpreter, POST it once; what was loaded."""
    source = str(ROOT / "functions" / function / "main.py")
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", LOADED.format(target=target, source=source)],
        env={**clean, "KUBECONFIG": "/nonexistent", **env}, capture_output=True, text=True,
        timeout=120, check=True, cwd=ROOT,
    )  # fmt: skip
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


@pytest.mark.parametrize("exporter", ["", "none"])
def test_tracing_off_never_loads_the_sdk(exporter: str) -> None:
    env = {"OTEL_TRACES_EXPORTER": exporter} if exporter else {}
    loaded = load_in_subprocess("ingest-falco", "ingest_falco_alert", env)
    assert loaded == {"status": 503, "loaded": []}  # handled (no token configured), untraced


def test_tracing_on_loads_the_sdk_but_never_pydantic_for_ingest() -> None:
    loaded = load_in_subprocess("ingest-falco", "ingest_falco_alert",
                                {"OTEL_TRACES_EXPORTER": "console"})  # fmt: skip
    assert loaded == {"status": 503, "loaded": ["opentelemetry.sdk", "opentelemetry.trace"]}
