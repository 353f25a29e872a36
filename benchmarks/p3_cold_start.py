"""P3: cold start — process start to the first answered event — of each function vs a bare app.

Each run starts ``functions-framework`` for one function (as deployed: one gunicorn worker,
INFO logging) and POSTs its first real event at once, retrying every 5 ms until the port accepts;
the clock stops at the answer. So it covers interpreter, framework, the function's imports,
``import kubernetes`` and loading the kubeconfig on first use, and the event's own API calls
against the stand-in (its own process). The floor is a bare functions-framework app answering
204, started the same way in the same rounds. Runs are interleaved round by round.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from benching import Row, sized, summarize
from launching import (
    INTEGRATOR_EVENT,
    NAMESPACE,
    FunctionCode,
    Request,
    StandIn,
    apiserver_add_event,
    falco_request,
    install_workload,
    noop_function,
    run_standin,
    running_pods,
    start_function,
)

from amtd.decide.triaging import triage_security_event
from amtd.model.actionevents import to_request_attributes
from amtd_stack.serving import pick_free_port
from support.builders import create_security_event, kubearmor_alert
from support.cloudevents import as_binary
from support.processes import stop_process
from support.receivers import run_sink
from support.signing import MATCHER_KEY, matcher_key_environment
from support.standins import NAMESPACES
from support.waiting import wait_for

TITLE = "P3 cold start: process start → first answered event, per function, vs a bare app"
ROUNDS = sized(7, 1)
GOAL_RATIO = 1.5
RETRY_S = 0.005
TOKEN = secrets.token_urlsafe(24)
Prepare = Callable[[StandIn, int], Request]  # builds round n's first event


def time_cold_start(code: FunctionCode, env: dict[str, str], request: Request) -> float:
    """Seconds from starting the process to the answer of ``request`` (a 2xx, else an error)."""
    port = pick_free_port()
    started = time.perf_counter()
    process = start_function(code, env, port)
    try:
        status, body = post_when_listening(port, request, process)
        elapsed = time.perf_counter() - started
    finally:
        stop_process(process)
    if not 200 <= status < 300:
        raise RuntimeError(f"{code.name} answered {status}: {body[:300]!r}")
    return elapsed


def post_when_listening(
    port: int, request: Request, process: subprocess.Popen[bytes]
) -> tuple[int, bytes]:
    """POST as soon as the port accepts a connection; status and body."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("POST", "/", body=request[1], headers=request[0])
            response = connection.getresponse()
            return response.status, response.read()
        except ConnectionRefusedError:
            time.sleep(RETRY_S)
        finally:
            connection.close()
    raise RuntimeError(f"function on port {port} never answered (exit {process.poll()})")


def next_pod(stand: StandIn) -> str:
    """A Running demo pod (the Deployment replaces the ones executors take)."""
    return wait_for(lambda: running_pods(stand.cluster), "a Running demo pod", 30.0)[0]


def matcher_event(stand: StandIn, round_: int) -> Request:
    """The add event of a new SecurityEvent."""
    obj = create_security_event(
        stand.cluster,
        f"cold-match-{round_}",
        targets=[f"{NAMESPACE}/{next_pod(stand)}"],
        rule_type="x",
        **INTEGRATOR_EVENT,
    )
    return apiserver_add_event(obj)


def action_event(rule_type: str) -> Prepare:
    """A decided SecurityEvent's ``action.requested`` (decided here with the matcher's code)."""

    def prepare(stand: StandIn, round_: int) -> Request:
        name = f"cold-{rule_type.split()[0].lower()}-{round_}"
        create_security_event(
            stand.cluster,
            name,
            targets=[f"{NAMESPACE}/{next_pod(stand)}"],
            rule_type=rule_type,
            **INTEGRATOR_EVENT,
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        triage = triage_security_event(
            stand.cluster, name, may_replay=True, now=now, signer=MATCHER_KEY
        )
        assert triage.request is not None, triage.outcome
        data = triage.request.model_dump(by_alias=True, mode="json")
        return as_binary(to_request_attributes(triage.request), data)

    return prepare


def kubearmor_request(stand: StandIn, round_: int) -> Request:
    """A KubeArmor policy alert (a new policy name per round, so it is created)."""
    alert = kubearmor_alert(
        NAMESPACE, next_pod(stand), at=datetime.now(UTC), PolicyName=f"block-pkg-mgmt-{round_}"
    )
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    return headers, json.dumps(alert).encode()


def ping(stand: StandIn, round_: int) -> Request:
    """A PingSource event, as the Broker delivers it."""
    attributes = {
        "type": "dev.knative.sources.ping", "id": str(uuid.uuid4()),
        "source": "/apis/v1/namespaces/amtd-system/pingsources/amtd-timer",
        "datacontenttype": "application/json",
    }  # fmt: skip
    return as_binary(attributes, {"round": round_})


def dead_letter(stand: StandIn, round_: int) -> Request:
    """A dead-lettered ``action.requested`` event about a SecurityEvent."""
    attributes = {
        "type": "com.r6security.amtd.action.requested.v1", "id": str(uuid.uuid4()),
        "source": "/amtd/matcher", "datacontenttype": "application/json",
        "securityevent": f"cold-match-{round_}", "knativeerrorcode": "503",
        "knativeerrordest": "http://executor-delete.amtd-system.svc.cluster.local",
        "knativeerrordata": base64.b64encode(b'{"error": "ApiUnavailable"}').decode(),
    }  # fmt: skip
    return as_binary(attributes, {"steps": []})


def falco(stand: StandIn, round_: int) -> Request:
    """A Falco alert (a new rule per round, so it is created)."""
    return falco_request(next_pod(stand), f"Terminal shell in container {round_}", TOKEN)


SCENARIOS: dict[str, tuple[Prepare, str]] = {
    "matcher": (matcher_event, "add of a new SecurityEvent"),
    "ingest-falco": (falco, "Falco alert, created"),
    "ingest-kubearmor": (kubearmor_request, "KubeArmor alert, created"),
    "timer": (ping, "ping"),
    "sweeper": (ping, "ping"),
    "dead-letters": (dead_letter, "dead letter recorded"),
    "executors/delete": (action_event("Terminal shell in container"), "delete step done"),
    "executors/quarantine": (action_event("network-attack"), "quarantine step done"),
}


def environment(stand: StandIn, code: FunctionCode, sink: str) -> dict[str, str]:
    """Identity (the func.yaml name), token and sink, as func.yaml and the cluster give them."""
    return {
        "KUBECONFIG": str(stand.kubeconfig(code.name)), "INGEST_TOKEN": TOKEN,
        "K_SINK": sink,  # the Broker's stand-in: dead-letters announces each dead letter there
        "SWEEP_GRACE_SECONDS": "86400",  # as every event here is younger than a day
        "AMTD_NAMESPACE": "amtd-system",
        **matcher_key_environment(),  # the matcher signs, the executors verify
    }  # fmt: skip


def run_rounds(stand: StandIn, floor_code: FunctionCode, sink: str) -> dict[str, list[float]]:
    """ROUNDS rounds; each: the bare app, then every function once."""
    install_workload(stand.cluster, replicas=3)
    # Unverified dead letters are recorded on the Broker, in amtd's own namespace.
    stand.cluster.create(NAMESPACES, {"metadata": {"name": "amtd-system"}})
    samples: dict[str, list[float]] = {"bare": []}
    bare_request: Request = ({"Content-Type": "application/json"}, b"{}")
    for round_ in range(ROUNDS):
        samples["bare"].append(time_cold_start(floor_code, {}, bare_request))
        for folder, (prepare, _) in SCENARIOS.items():
            request = prepare(stand, round_)
            code = FunctionCode.of(folder)
            cold = time_cold_start(code, environment(stand, code, sink), request)
            samples.setdefault(folder, []).append(cold)
    return samples


def measure() -> list[Row]:
    """One row per function against the bare app's median; the floor row last."""
    with run_standin() as stand, noop_function() as floor_code, run_sink() as sink:
        samples = run_rounds(stand, floor_code, sink.url)
    floor = statistics.median(samples["bare"])
    rows = [
        summarize(f"{folder} (first event: {SCENARIOS[folder][1]})", samples[folder], floor,
                  GOAL_RATIO * floor, f"≤ {GOAL_RATIO}x bare app")
        for folder in SCENARIOS
    ]  # fmt: skip
    rows.append(summarize("bare functions-framework app (the floor)", samples["bare"],
                          None, None, "-"))  # fmt: skip
    return rows
