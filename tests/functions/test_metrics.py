"""Every function's ``GET /metrics`` over real HTTP: functions-framework processes against the API
stand-in, driven with real requests, scraped and read with prometheus_client's own parser.

Counts move by exactly what was sent; probes and scrapes are not counted as requests; with
several gunicorn workers every scrape shows every worker's counts (multiprocess mode).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from amtd.edge.metrics import COUNTERS, REQUEST_LABELS
from amtd.edge.metrics import REQUESTS as REQUESTS_METRIC
from amtd.model.actionevents import to_request_attributes
from amtd.schedule.timing import ENABLED_ANNOTATION, SCHEDULE_ANNOTATION
from amtd_stack.running.scraping import scrape, total
from support.builders import FALCO_ALERT, create_security_event, falco_alert
from support.cloudevents import as_binary
from support.executors import create_decided_event, event_of
from support.functions import ROOT, serve_function
from support.ingesting import PING, TOKEN, bearer
from support.matching import apiserver_event
from support.standins import (
    Stand,
    create_deployment,
    create_pod,
    ensure_namespace,
    install_phoenix_sample,
    list_pods,
)

ALERTS = "amtd_ingest_alerts_total"
REQUESTS = "amtd_request_duration_seconds_count"


def post_alert(url: str, alert: Any, headers: dict[str, str] | None = None) -> int:
    """POST one plain JSON alert; its status."""
    answer = requests.post(url, json=alert, headers=bearer() if headers is None else headers,
                           timeout=30)  # fmt: skip
    return answer.status_code


def test_ingest_counts_each_alert_by_source_and_result(stand: Stand) -> None:
    env = {"KUBECONFIG": str(stand.kubeconfig("ingest-falco")), "INGEST_TOKEN": TOKEN}
    with serve_function("ingest-falco", env) as url:
        alerts = [FALCO_ALERT, FALCO_ALERT, falco_alert(pod="other-6b8f7d9c4-abcde")]
        sent = [post_alert(url, alert) for alert in alerts]
        sent += [post_alert(url, FALCO_ALERT, headers={}), post_alert(url, {"output": "x"})]
        for path in ("/health/liveness", "/health/readiness", "/metrics"):
            assert requests.get(url + path, timeout=10).status_code == 200
        samples = scrape(url)
    assert sent == [201, 200, 201, 401, 400]
    assert total(samples, ALERTS, source="falco", result="created") == 2
    assert total(samples, ALERTS, source="falco", result="duplicate") == 1
    assert total(samples, ALERTS, source="falco", result="rejected") == 1
    assert total(samples, ALERTS) == 4  # the refused request read no alert
    assert total(samples, "amtd_ingest_refused_total", source="falco", reason="Unauthorized") == 1
    counts = {code: total(samples, REQUESTS, code=code) for code in ("200", "201", "400", "401")}
    assert counts == {"200": 1, "201": 2, "400": 1, "401": 1}  # probes and scrapes not counted
    assert total(samples, REQUESTS) == 5


def test_the_exposition_is_prometheus_text_with_bounded_labels(stand: Stand) -> None:
    env = {"KUBECONFIG": str(stand.kubeconfig("ingest-falco")), "INGEST_TOKEN": TOKEN}
    pod = "cart-6b8f7d9c4-zz9zz"
    with serve_function("ingest-falco", env) as url:
        post_alert(url, falco_alert(pod=pod, rule="Some rule\nwith text"))
        answer = requests.get(url + "/metrics", timeout=10)
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    assert families["amtd_ingest_alerts"].type == "counter"
    assert families["amtd_request_duration_seconds"].type == "histogram"
    assert pod not in answer.text and "Some rule" not in answer.text


def test_every_worker_is_counted_whichever_answers_the_scrape(tmp_path: Path) -> None:
    base = tmp_path / "metrics"
    env = {
        "WORKERS": "2",
        "THREADS": "2",
        "INGEST_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(base),
    }
    sent = 0
    with serve_function("ingest-falco", env) as url, ThreadPoolExecutor(8) as pool:
        for _ in range(10):  # until both workers have answered some
            sent += len(list(pool.map(lambda _: post_alert(url, FALCO_ALERT, {}), range(16))))
            if len(writers(base)) == 2:
                break
        assert len(writers(base)) == 2, "one worker answered every request"
        scrapes = list(pool.map(lambda _: scrape(url), range(8)))
    refused = [
        total(samples, "amtd_ingest_refused_total", reason="Unauthorized") for samples in scrapes
    ]
    assert refused == [sent] * len(scrapes)
    assert [total(samples, REQUESTS, code="401") for samples in scrapes] == [sent] * len(scrapes)
    assert not list(base.iterdir())  # the process's own directory went with it


def writers(base: Path) -> set[str]:
    """The processes that wrote counter samples under ``base``."""
    return {path.stem.rsplit("_", 1)[1] for path in base.glob("*/counter_*.db")}


def test_the_matcher_counts_triages_and_new_decisions(stand: Stand) -> None:
    install_phoenix_sample(stand.cluster)
    pod = list_pods(stand.cluster, "demo", "app=nginx")[0]
    obj = create_security_event(stand.cluster, pods=[pod], rule_type="network-attack")
    headers, body = as_binary(*apiserver_event(obj))
    with serve_function("matcher", {"KUBECONFIG": str(stand.kubeconfig("matcher"))}) as url:
        first = requests.post(url, headers=headers, data=body, timeout=30)
        again = requests.post(url, headers=headers, data=body, timeout=30)  # a redelivery
        samples = scrape(url)
    assert (first.status_code, again.status_code) == (200, 200)
    assert total(samples, "amtd_matcher_triages_total", outcome="Decided") == 1
    assert total(samples, "amtd_matcher_triages_total") == 2
    decisions = "amtd_matcher_decisions_total"
    assert total(samples, decisions, outcome="Matched", action="quarantine") == 1
    assert total(samples, decisions) == 1  # the redelivery decided nothing anew


def test_an_executor_counts_each_step_once(stand: Stand) -> None:
    first, second = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-metrics", [first, second], "delete")
    headers, body = event_of(request)
    env = {"KUBECONFIG": str(stand.kubeconfig("executor-delete")), "KUBERNETES_SERVICE_HOST": ""}
    with serve_function("executors/delete", env) as url:
        reply = requests.post(url, headers=headers, data=body, timeout=60)
        again = requests.post(url, headers=headers, data=body, timeout=60)  # a redelivery
        samples = scrape(url)
    assert (reply.status_code, again.status_code) == (200, 200), reply.text
    executions = "amtd_executor_executions_total"
    labels = {"action": "delete", "result": "Succeeded", "reason": "PodDeleted"}
    assert total(samples, executions, **labels) == 2
    assert total(samples, executions) == 2  # the redelivery's recorded steps are not counted
    assert total(samples, REQUESTS, code="200") == 2


def test_a_scrape_needs_no_token(stand: Stand) -> None:
    env = {"KUBECONFIG": str(stand.kubeconfig("ingest-falco"))}
    with serve_function("ingest-falco", env) as url:  # no INGEST_TOKEN: every ingest refused
        assert requests.post(url, data=json.dumps(FALCO_ALERT), timeout=10).status_code == 503
        answer = requests.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert "amtd_ingest_refused_total" in answer.text and "NotConfigured" in answer.text


# The optional monitoring manifests (knative/monitoring/): what a Prometheus Operator user applies.

MONITORING = ROOT / "knative" / "monitoring"
TARGET_LABELS = {"service", "revision", "le"}  # the PodMonitor's relabelings; histogram buckets


def defined_samples() -> dict[str, set[str]]:
    """Every sample name the code defines, with the labels it carries."""
    defined = {f"{name}_total": set(labels) for name, _, labels in COUNTERS.values()}
    for suffix in ("_bucket", "_count", "_sum"):
        defined[REQUESTS_METRIC + suffix] = set(REQUEST_LABELS)
    return defined


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the Grafana dashboard."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_dashboard_expression_names_defined_metrics_and_labels() -> None:
    defined = defined_samples()
    expressions = dashboard_expressions()
    used: set[str] = set()
    for expression in expressions:
        names = set(re.findall(r"\bamtd_[a-z_]+\b", expression))
        assert names and names <= set(defined), expression
        used |= names
        grouped = {label.strip() for group in re.findall(r"by \(([^)]*)\)", expression)
                   for label in group.split(",")}  # fmt: skip
        selected = set(re.findall(r"([a-z_]+)=\"", expression))
        allowed = set().union(*(defined[name] for name in names)) | TARGET_LABELS
        assert grouped | selected <= allowed, expression
    families = {name.rsplit("_", 1)[0] for name in used}
    assert {name.rsplit("_", 1)[0] for name in defined} <= families  # every metric has a panel


def test_the_monitoring_kustomization_renders_the_podmonitor() -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(MONITORING)], capture_output=True,
                              text=True, check=True, timeout=60).stdout  # fmt: skip
    (monitor,) = yaml.safe_load_all(rendered)
    assert (monitor["kind"], monitor["metadata"]["namespace"]) == ("PodMonitor", "amtd-system")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["amtd-system"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("user-port", "/metrics")
    targets = {item["targetLabel"] for item in endpoint["relabelings"]}
    assert targets == TARGET_LABELS - {"le"}  # what the dashboard groups by
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    assert selected == {"key": "serving.knative.dev/service", "operator": "Exists"}


def test_the_timer_counts_due_pods_as_alerts_of_source_timer(stand: Stand) -> None:
    for name, schedule in (("cart-1", "1ns"), ("cart-2", "0 0 1 1 *")):  # due now; in months
        create_pod(stand.cluster, "shop", name, {ENABLED_ANNOTATION: "true",
                                                 SCHEDULE_ANNOTATION: schedule})  # fmt: skip
    headers, body = as_binary(PING, {"task": "timer"})
    with serve_function("timer", {"KUBECONFIG": str(stand.kubeconfig("timer"))}) as url:
        answers = [requests.post(url, headers=headers, data=body, timeout=30) for _ in range(2)]
        samples = scrape(url)
    assert [answer.status_code for answer in answers] == [204, 204]
    answered = Counter(
        key
        for answer in answers
        for item in answer.headers["X-Amtd-Result"].split(",")
        for key in [item.split("=")[0]] * int(item.split("=")[1])
    )  # e.g. created=1,waiting=1 then created=1,waiting=1 (1ns: due at every ping)
    assert answered["created"] >= 1 and answered["waiting"] == 2
    assert total(samples, ALERTS, source="timer", result="created") == answered["created"]
    assert total(samples, ALERTS, source="timer", result="duplicate") == answered["existing"]
    assert total(samples, ALERTS) == answered["created"] + answered["existing"]  # not "waiting"


def test_dead_letters_count_where_each_was_recorded(stand: Stand) -> None:
    ensure_namespace(stand.cluster, "amtd-system")
    request = create_decided_event(stand.cluster, "sev-lost", [], "delete", targets=["shop/x-1"])
    letter = {**to_request_attributes(request), "knativeerrorcode": "500"}
    unknown = {**letter, "id": "other-1", "securityevent": "sev-unknown", "subject": "sev-unknown"}
    data = request.model_dump(by_alias=True, mode="json")
    env = {"KUBECONFIG": str(stand.kubeconfig("dead-letters")), "AMTD_NAMESPACE": "amtd-system"}
    with serve_function("dead-letters", env) as url:
        statuses = [requests.post(url, headers=headers, data=body, timeout=30).status_code
                    for headers, body in (as_binary(letter, data), as_binary(letter, data),
                                          as_binary(unknown, data))]  # fmt: skip
        samples = scrape(url)
    assert statuses == [204, 204, 204]
    letters = "amtd_dead_letters_total"
    assert total(samples, letters, recorded_on="SecurityEvent", result="recorded") == 1
    assert total(samples, letters, recorded_on="SecurityEvent", result="duplicate") == 1
    assert total(samples, letters, recorded_on="Broker", result="recorded") == 1
    assert total(samples, letters) == 3


def test_the_sweeper_counts_what_it_did(stand: Stand, sink: Any) -> None:
    for index in range(2):  # undecided past the grace period: announced to the matcher
        create_security_event(stand.cluster, f"sev-missed-{index}", targets=["shop/x-1"])
    env = {"KUBECONFIG": str(stand.kubeconfig("sweeper")), "K_SINK": sink.url,
           "SWEEP_GRACE_SECONDS": "0"}  # fmt: skip
    headers, body = as_binary(PING, {"task": "sweeper"})
    with serve_function("sweeper", env) as url:
        answer = requests.post(url, headers=headers, data=body, timeout=30)
        samples = scrape(url)
    assert answer.status_code == 204, answer.text
    assert "decided=2" in answer.headers["X-Amtd-Result"]
    assert total(samples, "amtd_sweeper_items_total", kind="decided") == 2
    assert total(samples, "amtd_sweeper_items_total") == 2  # zero counts are not exported
