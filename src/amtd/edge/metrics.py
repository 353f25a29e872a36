"""Metrics: what every function counts, answered on ``GET /metrics`` in Prometheus' text format.

Recording is a side effect, so it stays at the edge: the core returns what happened (ingest
outcomes, a triage, Executions, a sweep's report) and the edge counts it here. Every label value
is bounded: a status code, a result or reason the code itself names (checked against a shape a
pod name or free text never has, else ``other``), never anything an alert or an event carries.
This module never imports pydantic (the ``light-functions`` contract): what it counts is read
through the small protocols below.

Processes: under ``functions-framework`` a function is served by gunicorn with ``WORKERS``
processes (default 1); deployed, func-python serves it in one process (hypercorn, in-process).
When there can be several (``WORKERS`` > 1, or ``PROMETHEUS_MULTIPROC_DIR`` set),
:func:`start_metrics` (called before gunicorn forks) switches prometheus_client to its
multiprocess mode with a fresh directory of this process's own (under ``PROMETHEUS_MULTIPROC_DIR``
when set, removed at exit): each worker writes its samples there and ``/metrics`` adds up every
worker's, whichever worker answers the scrape. The metrics are made on first use, so always
after that switch.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Protocol

import flask
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

METRICS_PATH = "/metrics"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKERS_ENV = "WORKERS"  # functions-framework's gunicorn worker count
OTHER = "other"
REASON_SHAPE = re.compile(r"[A-Z][A-Za-z]{0,47}")  # Succeeded, PodDeleted: never a pod name
NAME_SHAPE = re.compile(r"[a-z][A-Za-z]{0,31}")  # delete, customAction, falco, decided
CODE_SHAPE = re.compile(r"[1-5][0-9][0-9]")
REGISTRY = CollectorRegistry(auto_describe=True)
TIMER_RESULTS = {"created": "created", "existing": "duplicate", "blocked": "blocked",
                 "failed": "failed", "invalid": "rejected"}  # fmt: skip
_STATE = {"source": "", "directory": ""}  # this process's source; multiprocess mode's directory
MAX_REMEMBERED = 4096
_COUNTED: dict[str, None] = {}  # step ids counted, oldest first
_COUNTED_LOCK = threading.Lock()


class DecisionLike(Protocol):
    """What the matcher decided for one target (amtd.model.securityevents.Decision)."""

    @property
    def outcome(self) -> str: ...
    @property
    def action(self) -> str | None: ...


class TriageLike(Protocol):
    """What the matcher did with one SecurityEvent (amtd.decide.triaging.Triage)."""

    @property
    def outcome(self) -> str: ...
    @property
    def decisions(self) -> Iterable[DecisionLike]: ...


class ExecutionLike(Protocol):
    """What an executor did for one step (amtd.model.securityevents.Execution)."""

    @property
    def action(self) -> str: ...
    @property
    def result(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def step_id(self) -> str: ...
    @property
    def time(self) -> str: ...


@dataclass(frozen=True)
class Metrics:
    """Every metric a function may record (each function records its own share)."""

    requests: Histogram
    alerts: Counter
    refused: Counter
    triages: Counter
    decisions: Counter
    executions: Counter
    dead_letters: Counter
    swept: Counter


# (name, help, labels) of each counter; the exposition adds ``_total``.
COUNTERS = {
    "alerts": ("amtd_ingest_alerts", "Alerts received, by source and result", ("source", "result")),
    "refused": (
        "amtd_ingest_refused", "Ingest requests refused as a whole, by source and reason",
        ("source", "reason"),
    ),
    "triages": ("amtd_matcher_triages", "SecurityEvent events handled, by outcome", ("outcome",)),
    "decisions": (
        "amtd_matcher_decisions", "Decisions made, one per target, by outcome and action",
        ("outcome", "action"),
    ),
    "executions": (
        "amtd_executor_executions", "Steps executed, by action, result and reason",
        ("action", "result", "reason"),
    ),
    "dead_letters": (
        "amtd_dead_letters", "Dead letters, by what they were recorded on and result",
        ("recorded_on", "result"),
    ),
    "swept": ("amtd_sweeper_items", "What the sweeps did, by kind", ("kind",)),
}  # fmt: skip
REQUESTS = "amtd_request_duration_seconds"
REQUEST_LABELS = ("code",)
REQUESTS_HELP = "Time to answer a request (probes and scrapes not counted), by status code"


@functools.cache
def shared_metrics() -> Metrics:
    """The process's metrics, made on first use (after :func:`start_metrics` chose the mode)."""
    counters = {
        key: Counter(name, text, labels, registry=REGISTRY)
        for key, (name, text, labels) in COUNTERS.items()
    }
    requests = Histogram(REQUESTS, REQUESTS_HELP, REQUEST_LABELS, registry=REGISTRY)
    return Metrics(requests=requests, **counters)


def start_metrics(env: Mapping[str, str]) -> None:
    """At start, before gunicorn forks: multiprocess mode when several workers may count."""
    if _STATE["directory"] or not is_multiprocess(env):
        return  # chosen already, or one process
    parent = env.get(MULTIPROCESS_ENV) or None
    if parent is not None:
        os.makedirs(parent, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="amtd-metrics-", dir=parent)  # empty: nothing stale
    atexit.register(remove_directory, directory, os.getpid())
    os.environ[MULTIPROCESS_ENV] = directory  # the workers inherit it
    _STATE["directory"] = directory
    # prometheus_client chose its value class at import, before this: choose again
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def is_multiprocess(env: Mapping[str, str]) -> bool:
    """Whether more than one process may serve this function."""
    try:
        workers = int(env.get(WORKERS_ENV, "1") or "1")
    except ValueError:
        workers = 1
    return workers > 1 or bool(env.get(MULTIPROCESS_ENV))


def remove_directory(directory: str, owner: int) -> None:
    """At exit of the process that made it (a worker leaving must not take the samples)."""
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


def is_metrics_request(request: flask.Request) -> bool:
    """A scrape: ``GET /metrics``."""
    return request.method == "GET" and request.path == METRICS_PATH


def answer_metrics() -> flask.Response:
    """Every metric in the text exposition format (all workers' samples in multiprocess mode)."""
    shared_metrics()
    registry = REGISTRY
    if _STATE["directory"]:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    text = generate_latest(registry)  # amtd_* names need no escaping: the classic text format
    return flask.Response(text, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def observe_request(code: int, started: float) -> None:
    """One answered request, ``started`` by ``time.perf_counter()``."""
    duration = time.perf_counter() - started
    shared_metrics().requests.labels(bound(str(code), CODE_SHAPE)).observe(duration)


def set_ingest_source(function: str) -> None:
    """The source this process ingests for (``ingest-falco`` → ``falco``, ``timer``)."""
    _STATE["source"] = bound(function.removeprefix("ingest-"), NAME_SHAPE)


def count_alert(result: str, amount: int = 1) -> None:
    """One alert (or ``amount``) of this process's source and what became of it."""
    source = _STATE["source"] or OTHER
    shared_metrics().alerts.labels(source, bound(result, NAME_SHAPE)).inc(amount)


def count_refused(reason: str) -> None:
    """One ingest request refused as a whole (nothing counted outside an ingest function)."""
    if _STATE["source"]:
        shared_metrics().refused.labels(_STATE["source"], bound(reason, REASON_SHAPE)).inc()


def count_triage(triage: TriageLike) -> None:
    """One SecurityEvent event; its decisions when they were made now (not a replay)."""
    metrics = shared_metrics()
    metrics.triages.labels(bound(triage.outcome, REASON_SHAPE)).inc()
    if triage.outcome != "Decided":
        return
    for decision in triage.decisions:
        action = bound(decision.action or "none", NAME_SHAPE)
        metrics.decisions.labels(bound(decision.outcome, REASON_SHAPE), action).inc()


def count_executions(executions: Iterable[ExecutionLike], now: str) -> None:
    """The steps one request settled ``now``: not those recorded before (a redelivery), nor one
    this process counted already (a redelivery within the same second)."""
    metric = shared_metrics().executions
    for item in executions:
        if item.time != now or is_counted(item.step_id):
            continue
        action = bound(item.action, NAME_SHAPE)
        metric.labels(
            action, bound(item.result, REASON_SHAPE), bound(item.reason, REASON_SHAPE)
        ).inc()


def is_counted(step_id: str) -> bool:
    """Whether the step was counted already; remembers it (the last MAX_REMEMBERED steps)."""
    with _COUNTED_LOCK:
        if step_id in _COUNTED:
            return True
        _COUNTED[step_id] = None
        if len(_COUNTED) > MAX_REMEMBERED:
            _COUNTED.pop(next(iter(_COUNTED)))
        return False


def count_dead_letter(recorded_on: str, result: str) -> None:
    """One dead letter: recorded on a SecurityEvent or the Broker, or already recorded."""
    metric = shared_metrics().dead_letters
    metric.labels(bound(recorded_on, REASON_SHAPE), bound(result, NAME_SHAPE)).inc()


def count_report(report: Any) -> None:
    """A sweep's report (a dataclass of counts): each non-zero count by its field's name."""
    if not is_dataclass(report):
        raise TypeError(f"not a report: {type(report).__name__}")
    for item in fields(report):
        count = getattr(report, item.name)
        if isinstance(count, int) and count > 0:
            shared_metrics().swept.labels(bound(item.name, NAME_SHAPE)).inc(count)


def count_results(counts: Mapping[str, int]) -> None:
    """The timer's counts as alerts of its source: each due pod's event created, found existing
    (a duplicate), blocked by a namesake, or failed; an invalid annotation is rejected. Pods not
    due (waiting, disabled, terminating) raised nothing."""
    for result, count in counts.items():
        if count > 0 and result in TIMER_RESULTS:
            count_alert(TIMER_RESULTS[result], count)


def bound(value: str, shape: re.Pattern[str]) -> str:
    """``value`` when it has the shape label values of its kind have, else ``other``."""
    return value if shape.fullmatch(value) else OTHER
