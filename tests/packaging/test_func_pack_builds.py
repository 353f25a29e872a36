"""Every function built as Knative func v1.21's ``pack`` builder builds it, then served by func.

For each function (support.funcpack has the details): ``amtd stage`` into ``<workspace>/fn``,
func's injected project around it, Poetry's ``lock`` and ``sync --only main`` into a fresh venv
(one Poetry per session, its cache shared by the builds), then func's own service
(``python -m service.main``: func-python) with the function's func.yaml run.envs. The service
must pass the function's readiness through, and answer one real event or alert against the API
stand-in correctly, acting with the function's own identity.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from packaging.utils import canonicalize_name

from amtd.kube.api import EVENTS, PODS, SECURITY_EVENTS, Cluster
from amtd.model.actionevents import ACTION_COMPLETED, ACTION_REQUESTED
from amtd.schedule.timing import ENABLED_ANNOTATION, SCHEDULE_ANNOTATION
from amtd_packaging.staging import plan_requirements, stage_function
from amtd_stack.running.definitions import build_environment, discover_functions
from support.builders import (
    alertmanager_alert,
    alertmanager_notification,
    falco_alert,
    kubearmor_alert,
)
from support.cloudevents import as_binary, as_structured, read_reply
from support.executors import completed_event, create_decided_event, event_of
from support.funcpack import (
    PackBuild,
    build_with_poetry,
    clean_env,
    install_poetry,
    run,
    serve_service,
    write_injected_project,
)
from support.ingesting import TOKEN, bearer
from support.receivers import Answer, Receiver, SinkReceiver, answers
from support.signing import matcher_key_environment
from support.standins import (
    connect,
    create_deployment,
    create_pod,
    deploy_defended_workload,
    install_crds,
    install_phoenix_sample,
)
from support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = discover_functions(ROOT / "functions")
NAMES = sorted(FUNCTIONS)
FUNC_PYTHON = "0.7"  # the func-python series on cloudevents 1.x (0.8 needs cloudevents 2)
# What importing the build shows: where the function, its source and the core come from.
PROBE = """
import importlib.metadata, json, amtd, function
versions = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}
print(json.dumps({"function": function.__file__, "source": str(function.SOURCE),
                  "amtd": amtd.__file__, "target": function.TARGET, "versions": versions}))
"""


@dataclass(frozen=True)
class World:
    """What a scenario works with: the service, the test's own connection, the sink."""

    url: str
    cluster: Cluster
    sink: SinkReceiver
    hook: Receiver  # notify's generic webhook


@pytest.fixture(scope="session")
def pack_builds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], PackBuild]:
    """Build a function once per session (on first use); one Poetry, one Poetry cache."""
    poetry = install_poetry(tmp_path_factory.mktemp("poetry"))
    home = tmp_path_factory.mktemp("poetry-home")
    base = tmp_path_factory.mktemp("pack")

    @functools.cache
    def build(name: str) -> PackBuild:
        workspace = base / name / "workspace"
        stage_function(ROOT, name, workspace / "fn")
        write_injected_project(workspace)
        return build_with_poetry(poetry, workspace, home)

    return build


@pytest.mark.parametrize("name", NAMES)
def test_poetry_installs_the_lock_pins_and_the_function_editable(
    name: str, pack_builds: Callable[[str], PackBuild], tmp_path: Path
) -> None:
    build = pack_builds(name)
    assert {series(v) for v in build.locked["func-python"]} == {FUNC_PYTHON}  # for any Python
    result = run([build.python, "-c", PROBE], cwd=tmp_path, env=clean_env(INGEST_TOKEN="t"))
    found = json.loads(result.stdout.splitlines()[-1])
    fn = build.workspace / "fn"  # develop = true: the files of fn/ themselves, via a .pth
    assert found["function"] == str(fn / "function" / "__init__.py")
    assert found["source"] == str(fn / "main.py")  # the bridge's main.py, one level up
    assert found["amtd"] == str(fn / "amtd" / "__init__.py")
    assert found["target"] == FUNCTIONS[name].target
    versions: dict[str, str] = {canonicalize_name(n): v for n, v in found["versions"].items()}
    pins = plan_requirements(ROOT, FUNCTIONS[name])
    assert {n: versions.get(canonicalize_name(n)) for n in pins} == pins  # exactly the lock's
    assert series(versions["func-python"]) == FUNC_PYTHON


def series(version: str) -> str:
    """``major.minor`` of a version."""
    return ".".join(version.split(".")[:2])


@pytest.mark.parametrize("name", NAMES)
def test_funcs_service_passes_readiness_through_and_answers_a_real_event(
    name: str, pack_builds: Callable[[str], PackBuild], apiserver: Any, kubeconfig: Path,
    tmp_path: Path, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    build, definition = pack_builds(name), FUNCTIONS[name]
    sink = SinkReceiver()  # the sweeper's K_SINK
    hook = Receiver(answers(Answer(204)))  # notify's webhook
    request.addfinalizer(sink.stop)
    request.addfinalizer(hook.stop)
    function_kubeconfig = tmp_path / "function.kubeconfig"  # written once it runs
    env = service_env(name, function_kubeconfig, sink, hook)
    with serve_service(build, env, tmp_path / "service.log") as url:
        user = definition.service_account  # its ServiceAccount's identity
        check_probes(
            url, functools.partial(apiserver.write_kubeconfig, function_kubeconfig, user=user)
        )
        cluster = connect(kubeconfig)
        install_crds(cluster, ("amtd-system", "shop"))
        SCENARIOS[name](World(url, cluster, sink, hook))
    assert user in {record.user for record in apiserver.requests}  # it acted as itself


def service_env(name: str, kubeconfig: Path, sink: SinkReceiver, hook: Receiver) -> dict[str, str]:
    """func.yaml's run.envs (the ingest token's Secret: TOKEN) plus what the test points at."""
    definition = FUNCTIONS[name]
    overrides = {
        "KUBECONFIG": str(kubeconfig),
        "FUNCTION_TARGET": definition.target,
        **matcher_key_environment(),
    }  # the matcher's Secret, the executors' ConfigMap
    if name == "sweeper":  # bound to the sink (a SinkBinding's K_SINK), no grace period
        overrides |= {"K_SINK": sink.url, "SWEEP_GRACE_SECONDS": "0"}
    if name == "notify":  # the Secret amtd-notify: a generic webhook
        overrides |= {"NOTIFY_KIND": "webhook", "NOTIFY_URL": hook.url, "NOTIFY_TEMPLATE": "",
                      "NOTIFY_TOKEN": ""}  # fmt: skip
    return build_environment(definition, lambda *_: TOKEN, overrides, clean_env())


def check_probes(url: str, configure: Callable[[], object]) -> None:
    """Alive at once; not ready until ``configure`` gives it a cluster, then ready."""
    liveness = requests.get(f"{url}/health/liveness", timeout=10)
    assert (liveness.status_code, liveness.text) == (200, "OK")
    not_ready = requests.get(f"{url}/health/readiness", timeout=10)
    assert not_ready.status_code == 500  # func-python's answer for ready() == False
    assert "NotReady" in not_ready.text  # the function's own readiness, passed through
    configure()
    wait_for(lambda: is_ready(url), "the function to be ready", interval_s=0.1)


def is_ready(url: str) -> bool:
    """Whether the readiness probe answers 200."""
    return requests.get(f"{url}/health/readiness", timeout=10).status_code == 200


def post_event(url: str, request: tuple[dict[str, str], bytes]) -> requests.Response:
    """POST one CloudEvent (headers, body), as the Broker delivers it."""
    headers, body = request
    return requests.post(url, headers=headers, data=body, timeout=30)


def ping(source: str, task: str) -> tuple[dict[str, str], bytes]:
    """What PingSource ``source`` (knative/) sends through the Broker every minute."""
    attributes = {"type": "dev.knative.sources.ping", "id": str(uuid.uuid4()),
                  "source": f"/apis/v1/namespaces/amtd-system/pingsources/{source}",
                  "datacontenttype": "application/json"}  # fmt: skip
    return as_binary(attributes, {"task": task})


def check_matcher(world: World) -> None:
    """A SecurityEvent add event: the decision comes back as ``action.requested``."""
    pod = install_phoenix_sample(world.cluster)[0]
    target = f"demo/{pod['metadata']['name']}"
    body = {"apiVersion": "amtd.r6security.com/v1beta1", "kind": "SecurityEvent",
            "metadata": {"name": f"pack-{uuid.uuid4().hex[:8]}"},
            "spec": {"targets": [target], "rule": {"type": "network-attack"}}}  # fmt: skip
    created = world.cluster.create(SECURITY_EVENTS, body)
    attributes = {"type": "dev.knative.apiserver.resource.add", "id": str(uuid.uuid4()),
                  "source": "https://10.96.0.1:443", "datacontenttype": "application/json",
                  "apiversion": "amtd.r6security.com/v1beta1", "kind": "SecurityEvent",
                  "name": created["metadata"]["name"]}  # fmt: skip
    reply = post_event(world.url, as_binary(attributes, created))
    assert reply.status_code == 200, reply.text
    reply_attributes, data = read_reply(reply.headers, reply.content)
    assert reply_attributes["type"] == ACTION_REQUESTED
    assert [(s["target"], s["action"]) for s in data["steps"]] == [(target, "quarantine")]


def check_ingest(world: World, alert: dict[str, Any], rule_source: str) -> None:
    """An authenticated alert (Falcosidekick webhook, Fluent Bit) creates a SecurityEvent."""
    headers = {**bearer(), "Content-Type": "application/json"}
    answer = requests.post(world.url, headers=headers, data=json.dumps(alert), timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.json()["result"] == "created"
    created = world.cluster.get(SECURITY_EVENTS, answer.json()["name"])
    assert created["spec"]["targets"] == ["shop/cart-6b8f7d9c4-hx2lp"]
    assert created["spec"]["rule"]["source"] == rule_source  # func.yaml's RULE_SOURCE


def check_alertmanager(world: World) -> None:
    """An authenticated Alertmanager notification: its firing alert becomes a SecurityEvent."""
    body = json.dumps(alertmanager_notification(alertmanager_alert()))
    headers = {**bearer(), "Content-Type": "application/json"}
    answer = requests.post(world.url, headers=headers, data=body, timeout=30)
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["result"] == "created"
    created = world.cluster.get(SECURITY_EVENTS, result["name"])
    assert created["spec"]["targets"] == ["shop/cart-6b8f7d9c4-hx2lp"]
    assert created["spec"]["rule"]["source"] == "PrometheusIntegrator"  # func.yaml's RULE_SOURCE


def check_dead_letters(world: World) -> None:
    """A dead-lettered Falco event becomes a Warning Event on the Broker."""
    attributes = {"type": "falco.rule.output.v1", "source": "https://falco.org", "id": "f-1",
                  "datacontenttype": "application/json", "knativeerrorcode": "400",
                  "knativeerrordest": "http://ingest-falco.amtd-system.svc"}  # fmt: skip
    answer = post_event(world.url, as_structured(attributes, {"rule": "x"}))
    assert answer.status_code == 204, answer.text
    (event,) = [e for e in world.cluster.list(EVENTS, "amtd-system") if e["reason"] == "DeadLetter"]
    assert (event["type"], event["involvedObject"]["kind"]) == ("Warning", "Broker")
    assert "falco.rule.output.v1" in event["message"] and "HTTP 400" in event["message"]


def check_timer(world: World) -> None:
    """A ping: the pod whose schedule is due gets its time-based SecurityEvent."""
    annotations = {ENABLED_ANNOTATION: "true", SCHEDULE_ANNOTATION: "1ns"}  # due at once
    create_pod(world.cluster, "shop", "cart-1", annotations)
    answer = post_event(world.url, ping("amtd-timer", "timer"))
    assert answer.status_code == 204, answer.text
    assert answer.headers["X-Amtd-Result"] == "created=1"
    (created,) = world.cluster.list(SECURITY_EVENTS)
    assert created["spec"]["targets"] == ["shop/cart-1"]


def check_sweeper(world: World) -> None:
    """A ping: a SecurityEvent the source missed is announced to the matcher (which signs)."""
    (pod,) = deploy_defended_workload(world.cluster, "shop", "cart", 1, "delete")
    target = f"shop/{pod['metadata']['name']}"
    body = {"apiVersion": "amtd.r6security.com/v1beta1", "kind": "SecurityEvent",
            "metadata": {"name": "missed-1"},
            "spec": {"targets": [target], "rule": {"type": "x"}}}  # fmt: skip
    world.cluster.create(SECURITY_EVENTS, body)
    answer = post_event(world.url, ping("amtd-sweeper", "sweep"))
    assert answer.status_code == 204, answer.text
    (published,) = world.sink.received()
    announced = ("dev.knative.apiserver.ref.add", "/amtd/sweeper")
    assert (published["type"], published["source"]) == announced
    data = published.get_data()
    assert isinstance(data, dict) and data["name"] == "missed-1"


def check_executor(world: World, action: str, reason: str, **options: Any) -> dict[str, Any]:
    """An ``action.requested`` with one step for this executor: done, said in the reply."""
    pod, _ = create_deployment(world.cluster, "shop", "web")
    request = create_decided_event(world.cluster, f"sev-{action.lower()}", [pod], action,
                                   **options)  # fmt: skip
    reply = post_event(world.url, event_of(request))
    assert reply.status_code == 200, reply.text
    attributes, data = read_reply(reply.headers, reply.content)
    assert attributes["type"] == ACTION_COMPLETED
    assert [(e["result"], e["reason"]) for e in data["executions"]] == [("Succeeded", reason)]
    return pod


def check_delete(world: World) -> None:
    """executor-delete: the pod is gone."""
    pod = check_executor(world, "delete", "PodDeleted")
    assert world.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


def check_quarantine(world: World) -> None:
    """executor-quarantine: the pod keeps running, relabelled into quarantine."""
    pod = check_executor(world, "quarantine", "PodQuarantined")
    labels = world.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]["labels"]
    assert list(labels) == ["amtd.r6security.com/quarantine"]


def check_debug(world: World) -> None:
    """executor-debug: the pod keeps running, with one ephemeral container more."""
    parameters = {"image": "busybox"}
    pod = check_executor(world, "debugger", "DebugContainerAttached", parameters=parameters)
    found = world.cluster.get(PODS, pod["metadata"]["name"], "shop")
    assert [item["image"] for item in found["spec"]["ephemeralContainers"]] == ["busybox"]


def check_notify(world: World) -> None:
    """notify: a recorded execution becomes one webhook post naming the pod and the result."""
    attributes, data = completed_event(world.cluster, "sev-notify")
    answer = post_event(world.url, as_binary(attributes, data))
    assert answer.status_code == 204, answer.text
    (posted,) = world.hook.requests
    (fields,) = json.loads(posted.body)["notifications"]
    assert (fields["pod"], fields["action"], fields["result"]) == (
        "sev-notify-pod", "delete", "Succeeded",
    )  # fmt: skip


SCENARIOS: dict[str, Callable[[World], None]] = {
    "matcher": check_matcher,
    "ingest-falco": lambda world: check_ingest(world, falco_alert(), "FalcoIntegrator"),
    "ingest-kubearmor": lambda world: check_ingest(world, kubearmor_alert(), "KubeArmorIntegrator"),
    "ingest-alertmanager": check_alertmanager,
    "dead-letters": check_dead_letters,
    "timer": check_timer,
    "sweeper": check_sweeper,
    "executor-delete": check_delete,
    "executor-quarantine": check_quarantine,
    "executor-debug": check_debug,
    "notify": check_notify,
}


def test_every_function_has_a_scenario() -> None:
    assert sorted(SCENARIOS) == NAMES
