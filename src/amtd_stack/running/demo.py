"""``make demo``: the whole chain on the embedded stack, narrated as it happens.

A Phoenix sample Deployment and policy, then three real alerts: Falco reports a shell in one pod
(the policy says delete: the Deployment replaces it), KubeArmor reports a package manager in
another (the policy says quarantine: it keeps running, isolated, and is replaced in its workload)
and Prometheus Alertmanager reports a crypto miner in a third (the policy says debugger: an
ephemeral container is added to the pod for a look inside). Every step is read back from the API
server, not assumed. The first alert's trace is printed as the functions exported it (each traces
to the demo's loopback OTLP collector), and every function's metrics at the end.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

from amtd.kube.api import NETWORK_POLICIES, PODS, POLICIES, SECURITY_EVENTS, Cluster, Resource
from amtd.model.traces import read_annotated_traceparent
from amtd_stack.running.receivers import LoopbackReceiver, Received, Reply
from amtd_stack.running.scraping import scrape_all, summarize
from amtd_stack.running.stack import ALL_FUNCTIONS, Stack
from amtd_stack.running.traces import (
    ReceivedSpan,
    TraceCollector,
    read_ids,
    render_trace,
    tracing_env,
)

NAMESPACE = "demo"
ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "demo"
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", namespaced=True)
T = TypeVar("T")
# The functions whose func.yaml reads the ingest token Secret, which the demo stands in for.
INGEST_FUNCTIONS = ("ingest-falco", "ingest-kubearmor", "ingest-alertmanager")
# The spans one Falco alert that deletes a pod leaves, one per hop (docs/tracing.md §3).
TRACED_HOPS = frozenset({"amtd.ingest.request", "amtd.ingest.alert", "amtd.decide", "amtd.execute"})


class ChatReceiver(LoopbackReceiver):
    """A stand-in for a Slack incoming webhook on loopback: keeps each message's text."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    @property
    def url(self) -> str:
        """The webhook URL notify is given (through the Secret amtd-notify)."""
        return f"{super().url}/services/demo"

    def accept(self, received: Received) -> Reply:
        """Accept a POSTed ``{"text": ...}`` as Slack does (200 ``ok``)."""
        self.texts.append(str(json.loads(received.body).get("text", "")))
        return Reply(200, body=b"ok")


def show_notification(receiver: ChatReceiver, pod: str) -> None:
    """Wait for notify's message about ``pod`` and print it as the chat got it."""
    text = wait_for("the notification", lambda: next((t for t in receiver.texts if pod in t), None))
    say(f"   notify → chat webhook: {text}")


def show_trace(cluster: Cluster, collector: TraceCollector, name: str) -> None:
    """Print the trace of SecurityEvent ``name``'s alert, found by the trace context ingest
    annotated it with, once every hop's span has been exported."""
    traceparent = read_annotated_traceparent(cluster.get(SECURITY_EVENTS, name))
    if traceparent is None:  # tracing turned off from outside (OTEL_SDK_DISABLED=true, say)
        say("   (no trace: the SecurityEvent carries no trace context)")
        return
    trace_id = read_ids(traceparent)[:32]

    def complete() -> list[ReceivedSpan] | None:
        spans = collector.spans_of(trace_id)
        return spans if {span.name for span in spans} >= TRACED_HOPS else None

    spans = wait_for("the alert's spans", complete)
    say("   one trace (OpenTelemetry, exported by each function to the stack's OTLP receiver):")
    for line in render_trace(spans):
        say(f"     {line}")


def say(text: str) -> None:
    """One narrated step."""
    print(text, flush=True)


def wait_for(what: str, probe: Callable[[], T | None], deadline_s: float = 60.0) -> T:
    """Poll ``probe`` until it returns something; a progress line meanwhile (on a terminal)."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < deadline_s:
        found = probe()
        if found:
            if sys.stdout.isatty():
                print("\r\033[K", end="")
            return found
        if sys.stdout.isatty():
            print(f"\r   … waiting for {what} ({elapsed:4.1f} s)", end="", flush=True)
        time.sleep(0.1)
    raise TimeoutError(f"gave up waiting for {what} after {deadline_s:.0f} s")


def running_pods(cluster: Cluster) -> list[dict[str, Any]]:
    """The demo Deployment's Running pods (quarantined ones no longer carry app=nginx)."""
    pods = cluster.list(PODS, NAMESPACE, label_selector="app=nginx")
    return [pod for pod in pods if pod.get("status", {}).get("phase") == "Running"]


def apply_examples(cluster: Cluster) -> None:
    """Create the namespace, the Deployment and the policy from examples/demo/."""
    kinds = {"Namespace": NAMESPACES, "Deployment": DEPLOYMENTS}
    for path in ("workload.yaml", "policy.yaml"):
        for document in yaml.safe_load_all((EXAMPLES / path).read_text()):
            resource = kinds.get(document["kind"], POLICIES)
            cluster.create(resource, document, document["metadata"].get("namespace"))


def falco_alert(pod: str) -> dict[str, Any]:
    """A Falco ``http_output`` alert, as Falco sends it (docs/ingest.md, "Falco")."""
    return {
        "output": f"09:12:44.318220471: Notice A shell was spawned in a container with an "
        f"attached terminal (user=root k8s.ns={NAMESPACE} k8s.pod={pod} shell=sh)",
        "priority": "Notice",
        "rule": "Terminal shell in container",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "output_fields": {"k8s.ns.name": NAMESPACE, "k8s.pod.name": pod, "user.name": "root"},
        "source": "syscall",
        "tags": ["T1059", "container", "shell"],
        "hostname": "node-1",
    }


def kubearmor_alert(pod: str) -> dict[str, Any]:
    """A KubeArmor policy alert (its ``Alert`` JSON), as Fluent Bit forwards it (docs/ingest.md)."""
    return {
        "Timestamp": int(time.time()), "ClusterName": "default", "HostName": "node-1",
        "NamespaceName": NAMESPACE, "PodName": pod, "Labels": "app=nginx",
        "ContainerName": "nginx", "ProcessName": "/usr/bin/apt",
        "PolicyName": "block-pkg-mgmt-tools-exec", "Severity": "1",
        "Message": "package manager execution blocked", "Type": "MatchedPolicy",
        "Operation": "Process", "Resource": "/usr/bin/apt update",
        "Action": "Block", "Result": "Permission denied",
    }  # fmt: skip


def alertmanager_notification(pod: str) -> dict[str, Any]:
    """An Alertmanager webhook notification (payload version 4) with one firing alert, as its
    ``webhook_configs`` receiver posts it (docs/ingest.md, "Prometheus Alertmanager")."""
    labels = {"alertname": "KubePodCryptoMiner", "rule": "crypto-miner-detected",
              "severity": "warning", "namespace": NAMESPACE, "pod": pod}  # fmt: skip
    alert = {
        "status": "firing", "labels": labels,
        "annotations": {"summary": f"Crypto miner in {NAMESPACE}/{pod}"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": secrets.token_hex(8),
        "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=up&g0.tab=1",
    }  # fmt: skip
    return {
        "receiver": "amtd", "status": "firing", "alerts": [alert],
        "groupLabels": {"alertname": "KubePodCryptoMiner"}, "commonLabels": labels,
        "commonAnnotations": {}, "externalURL": "http://alertmanager-main-0:9093",
        "version": "4", "groupKey": '{}:{alertname="KubePodCryptoMiner"}', "truncatedAlerts": 0,
    }  # fmt: skip


def post_alert(url: str, token: str, alert: Any) -> str:
    """Send an alert the way Falcosidekick/Fluent Bit/Alertmanager do; return the SecurityEvent
    name."""
    answer = requests.post(
        url, json=alert, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    answer.raise_for_status()
    body = answer.json()
    result = body["results"][0] if "results" in body else body
    say(f"   ingest answered {answer.status_code}: {result['result']} {result['name']}")
    return str(result["name"])


def follow_decision(cluster: Cluster, name: str) -> dict[str, Any]:
    """Wait for the matcher's decision and narrate it."""

    def decided() -> dict[str, Any] | None:
        status = cluster.get(SECURITY_EVENTS, name).get("status", {})
        return status["decisions"][0] if status.get("decisions") else None

    decision = wait_for("the matcher's decision", decided)
    say(
        f"   matcher: policy {decision['policy']}, rule #{decision['ruleIndex']} "
        f"{json.dumps(decision['rule'])} (score {decision['score']}, {decision['reason']})"
        f" → {decision['action']}"
    )
    return decision


def follow_execution(cluster: Cluster, name: str) -> dict[str, Any]:
    """Wait for the executor's record on the SecurityEvent and narrate it."""

    def executed() -> dict[str, Any] | None:
        status = cluster.get(SECURITY_EVENTS, name).get("status", {})
        return status if status.get("executions") else None

    status = wait_for("the executor's record", executed)
    execution = status["executions"][0]
    say(
        f"   {execution['executor']}: {execution['result']} ({execution['reason']}); "
        f"SecurityEvent {name} is {status['phase']}"
    )
    return status


def act_delete(
    stack: Stack, cluster: Cluster, token: str, chat: ChatReceiver, collector: TraceCollector
) -> None:
    """Act 1: Falco alert → delete → the Deployment replaces the pod → a chat message → the
    alert's trace."""
    before = {pod["metadata"]["name"] for pod in running_pods(cluster)}
    victim = min(before)
    say(f"\n1. Falco: 'Terminal shell in container' in pod {victim}")
    name = post_alert(stack.endpoints()["functions"]["ingest-falco"], token, falco_alert(victim))
    follow_decision(cluster, name)
    wait_for(f"pod {victim} to go", lambda: cluster.find(PODS, victim, NAMESPACE) is None)
    say(f"   pod {victim} deleted")
    replacement = wait_for("a replacement pod", lambda: replacement_of(cluster, before))
    say(f"   replacement pod {replacement} is Running — the target moved")
    follow_execution(cluster, name)
    show_notification(chat, victim)
    show_trace(cluster, collector, name)


def act_quarantine(stack: Stack, cluster: Cluster, token: str) -> None:
    """Act 2: KubeArmor alert → quarantine → isolated pod kept, workload replaced."""
    before = {pod["metadata"]["name"] for pod in running_pods(cluster)}
    victim = min(before)
    say(f"\n2. KubeArmor: 'block-pkg-mgmt-tools-exec' in pod {victim}")
    url = stack.endpoints()["functions"]["ingest-kubearmor"]
    name = post_alert(url, token, kubearmor_alert(victim))
    follow_decision(cluster, name)
    isolated = wait_for("the quarantine label", lambda: quarantine_label(cluster, victim))
    policy = cluster.get(NETWORK_POLICIES, isolated, NAMESPACE)
    say(f"   pod {victim} isolated by NetworkPolicy {policy['metadata']['name']} (deny all)")
    replacement = wait_for("a replacement pod", lambda: replacement_of(cluster, before))
    phase = cluster.get(PODS, victim, NAMESPACE)["status"]["phase"]
    say(f"   pod {victim} is still {phase} for forensics; replacement {replacement} is Running")
    follow_execution(cluster, name)


def act_debug(stack: Stack, cluster: Cluster, token: str) -> None:
    """Act 3: Alertmanager alert → debugger → an ephemeral container added to the pod."""
    victim = min(pod["metadata"]["name"] for pod in running_pods(cluster))
    say(f"\n3. Alertmanager: 'KubePodCryptoMiner' (rule crypto-miner-detected) in pod {victim}")
    url = stack.endpoints()["functions"]["ingest-alertmanager"]
    name = post_alert(url, token, alertmanager_notification(victim))
    follow_decision(cluster, name)
    pod = wait_for("the ephemeral container", lambda: debugged_pod(cluster, victim))
    container = pod["spec"]["ephemeralContainers"][0]
    state = next(iter(pod["status"]["ephemeralContainerStatuses"][0].get("state") or {"-": 0}))
    say(
        f"   pod {victim} has ephemeral container {container['name']} (image "
        f"{container['image']}, target {container.get('targetContainerName', '-')}, {state})"
    )
    app = pod["metadata"].get("labels", {}).get("app", "-")
    say(f"   pod {victim} is still {pod['status']['phase']} with its labels (app={app})")
    follow_execution(cluster, name)


def debugged_pod(cluster: Cluster, name: str) -> dict[str, Any] | None:
    """The pod, once an ephemeral container was added and its status shown."""
    pod = cluster.get(PODS, name, NAMESPACE)
    added = pod.get("spec", {}).get("ephemeralContainers")
    return pod if added and pod.get("status", {}).get("ephemeralContainerStatuses") else None


def replacement_of(cluster: Cluster, before: set[str]) -> str | None:
    """A Running pod of the Deployment that was not there before the attack."""
    fresh = sorted(pod["metadata"]["name"] for pod in running_pods(cluster))
    return next((name for name in fresh if name not in before), None)


def quarantine_label(cluster: Cluster, pod: str) -> str | None:
    """The value of the pod's quarantine label (also its NetworkPolicy's name), once set."""
    labels = cluster.get(PODS, pod, NAMESPACE)["metadata"].get("labels", {})
    value = labels.get("amtd.r6security.com/quarantine")
    return str(value) if value else None


def show_kubectl(stack: Stack) -> None:
    """What a user sees with kubectl (the stand-in serves the CRD's printer columns)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    command = [kubectl, "--kubeconfig", str(stack.kubeconfig), "get", "securityevents"]
    say("\n$ kubectl get securityevents")
    say(subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout)


def function_urls(stack: Stack) -> dict[str, str]:
    """Every function's base URL, by name."""
    return {name: str(url) for name, url in stack.endpoints()["functions"].items()}


def function_overrides(token: str, collector: TraceCollector) -> dict[str, dict[str, str]]:
    """Every function traces to ``collector``; the ingest functions also take ``token``."""
    ingest = {name: {"INGEST_TOKEN": token} for name in INGEST_FUNCTIONS}
    return {ALL_FUNCTIONS: tracing_env(collector.url), **ingest}


def run_demo(state_dir: Path) -> None:
    """Start, set up, attack three times, show, stop."""
    token = secrets.token_urlsafe(24)
    say("Starting the embedded stack (API server stand-in, local Knative Eventing, functions)…")
    started = time.monotonic()
    with (
        ChatReceiver() as chat,
        TraceCollector() as collector,
        Stack(ROOT, state_dir, env_overrides=function_overrides(token, collector),
              notify={"kind": "slack", "url": chat.url}) as stack,
    ):  # fmt: skip
        say(f"   up in {time.monotonic() - started:.1f} s; broker {stack.broker_url()}")
        cluster = Cluster.connect(str(stack.kubeconfig))
        say("\nApplying examples/demo/: namespace demo, Deployment nginx (2 pods), the AMTD policy")
        apply_examples(cluster)
        pods = wait_for(
            "2 Running pods", lambda: running_pods(cluster)[1:] and running_pods(cluster)
        )
        say(f"   pods Running: {', '.join(pod['metadata']['name'] for pod in pods)}")
        say(f"   notify posts to a Slack-style webhook on {chat.url} (the Secret amtd-notify)")
        act_delete(stack, cluster, token, chat, collector)
        act_quarantine(stack, cluster, token)
        act_debug(stack, cluster, token)
        show_kubectl(stack)
        say(f"metrics (each function's /metrics): {summarize(scrape_all(function_urls(stack)))}")
    say("Stopped. To look around yourself:")
    say("   .venv/bin/amtd up --state-dir .state/up        # then, in another shell:")
    say("   kubectl --kubeconfig .state/up/kubeconfig get securityevents,amtd -A")


def main() -> int:
    """Entry point of ``make demo``."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise
    state_dir = ROOT / ".state" / "demo"
    shutil.rmtree(state_dir, ignore_errors=True)
    try:
        run_demo(state_dir)
    except (TimeoutError, requests.RequestException) as error:
        print(f"demo failed: {error} (function logs in {state_dir / 'logs'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
