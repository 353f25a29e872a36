"""Launching: what the timing figures run — the API stand-in, function processes, a no-op floor.

Everything is real: functions-framework processes on loopback ports (one gunicorn worker, as
deployed), the stand-in over HTTP, the official client (``amtd.kube.api.Cluster``) for setup.
Every start is a context manager whose exit stops what it started. Helpers the tests use as
well (waiting, processes, the stand-in's CRDs, CloudEvents) come from ``tests/support`` (run.py
puts ``tests/`` on the path, as pytest's ``pythonpath`` does for the tests).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from amtd.kube.api import POLICIES, Cluster
from amtd_stack.apiserver import ApiServer, start_apiserver
from amtd_stack.running.stack import Stack
from amtd_stack.serving import pick_free_port
from support.builders import falco_alert
from support.cloudevents import as_binary
from support.functions import FUNCTIONS, read_target
from support.processes import stop_process, wait_for_port
from support.standins import DEPLOYMENTS, NAMESPACES, install_crds, list_pods
from support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
INGESTERS = ("ingest-falco", "ingest-kubearmor", "ingest-alertmanager")
BIN = Path(sys.executable).parent
NAMESPACE = "demo"
NOOP_TARGET = "answer_nothing"
NOOP_SOURCE = '''"""The floor: an HTTP function that reads the body and answers 204."""

import flask
import functions_framework


@functions_framework.http
def answer_nothing(request: flask.Request) -> flask.Response:
    """Nothing to do."""
    request.get_data()
    return flask.Response(status=204)
'''
Request = tuple[dict[str, str], bytes]
# The keywords of support.builders.make_security_event for an integrator's Falco events.
INTEGRATOR_EVENT = {
    "threat_level": "Warning",
    "source": "FalcoIntegrator",
    "description": "benchmark",
}


@dataclass
class StandIn:
    """A running API stand-in: its URL, an admin kubeconfig and connection, kubeconfigs per user."""

    url: str
    folder: Path
    cluster: Cluster
    server: ApiServer | None  # in-process only: gives the request log

    def kubeconfig(self, user: str = "admin") -> Path:
        """A kubeconfig whose identity is ``user``."""
        return write_kubeconfig(self.url, self.folder / f"kubeconfig-{user}", user)


def write_kubeconfig(url: str, path: Path, user: str) -> Path:
    """The stand-in's kubeconfig layout (bearer token = user name, as ApiServer writes it)."""
    cluster, context = {"server": url}, {"cluster": "amtd-local", "user": user}
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": "amtd-local",
        "clusters": [{"name": "amtd-local", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": user, "as": user}}],
        "contexts": [{"name": "amtd-local", "context": context}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(document))
    return path


@contextlib.contextmanager
def run_standin(in_process: bool = False) -> Iterator[StandIn]:
    """The stand-in with our CRDs; its own process (no GIL shared with the load) unless asked."""
    with tempfile.TemporaryDirectory(prefix="amtd-bench-") as folder:
        base = Path(folder)
        with contextlib.ExitStack() as stack:
            server: ApiServer | None = None
            if in_process:
                server = stack.enter_context(start_apiserver())
                url = server.url
            else:
                url = stack.enter_context(run_standin_process(base))
            cluster = Cluster.connect(str(write_kubeconfig(url, base / "kubeconfig", "admin")))
            install_crds(cluster)
            yield StandIn(url, base, cluster, server)


@contextlib.contextmanager
def run_standin_process(folder: Path) -> Iterator[str]:
    """``python -m amtd_stack.apiserver`` on a free port; yields its URL."""
    command = [sys.executable, "-m", "amtd_stack.apiserver"]
    log = (folder / "apiserver.log").open("wb")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().decode().strip()
    finally:
        stop_process(process)
        log.close()


def install_workload(cluster: Cluster, replicas: int, deadline_s: float = 30.0) -> list[str]:
    """Namespace ``demo``, the demo Deployment with ``replicas`` pods and the demo AMTD."""
    namespace, deployment = yaml.safe_load_all((ROOT / "examples/demo/workload.yaml").read_text())
    cluster.create(NAMESPACES, namespace)
    deployment["spec"]["replicas"] = replicas
    cluster.create(DEPLOYMENTS, deployment, NAMESPACE)
    policy = yaml.safe_load((ROOT / "examples/demo/policy.yaml").read_text())
    cluster.create(POLICIES, policy, NAMESPACE)
    return wait_for(lambda: running_pods(cluster)[replicas - 1 :] and running_pods(cluster),
                    "the demo pods", deadline_s)  # fmt: skip


def running_pods(cluster: Cluster) -> list[str]:
    """Names of the demo Deployment's Running pods that are not being deleted, sorted."""
    return [pod["metadata"]["name"] for pod in list_pods(cluster, NAMESPACE, "app=nginx")]


@dataclass(frozen=True)
class FunctionCode:
    """What functions-framework runs: a source file and its target; ``name`` as in func.yaml."""

    name: str
    source: Path
    target: str

    @classmethod
    def of(cls, folder: str) -> FunctionCode:
        """``functions/<folder>`` (e.g. ``matcher``, ``executors/delete``)."""
        path = FUNCTIONS / folder
        name = yaml.safe_load((path / "func.yaml").read_text())["name"]
        return cls(str(name), path / "main.py", read_target(path))


@contextlib.contextmanager
def noop_function() -> Iterator[FunctionCode]:
    """The floor's function source, written to a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="amtd-noop-") as folder:
        source = Path(folder) / "main.py"
        source.write_text(NOOP_SOURCE)
        yield FunctionCode("no-op", source, NOOP_TARGET)


def start_function(
    code: FunctionCode, env: Mapping[str, str], port: int, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``functions-framework`` for ``code`` on ``port`` (defaults: 1 worker, 4 threads a CPU).

    Logging stays as deployed (INFO, one line per decision); the lines go to ``log``.
    """
    command = [
        str(BIN / "functions-framework"), "--target", code.target, "--source", str(code.source),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": image_python_path(), **env}
    with open(log or os.devnull, "ab") as output:
        return subprocess.Popen(
            command, env=environment, cwd=code.source.parent, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


_HIDDEN = tempfile.TemporaryDirectory(prefix="amtd-image-")  # removed when this process ends


def image_python_path() -> str:
    """A PYTHONPATH entry hiding the dev-only packages a function image lacks.

    ``kubernetes.dynamic`` imports ``kubernetes_validate`` (a dev dependency here) when it is
    importable: ~30 ms of ``import kubernetes`` that a deployed function never pays.
    """
    package = Path(_HIDDEN.name) / "kubernetes_validate"
    if not package.exists():
        package.mkdir()
        (package / "__init__.py").write_text('raise ImportError("not in function images")\n')
    return _HIDDEN.name


@contextlib.contextmanager
def serve(code: FunctionCode, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """The function serving on a free port until the block ends; yields the port."""
    port = pick_free_port()
    with tempfile.NamedTemporaryFile(prefix=f"amtd-{code.target}-", suffix=".log") as log:
        process = start_function(code, env or {}, port, Path(log.name))
        try:
            wait_for_port(port)
            yield port
        finally:
            stop_process(process)


class Client:
    """One keep-alive HTTP/1.1 connection (as a broker keeps them), reopened when dropped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, request: Request, path: str = "/") -> tuple[int, bytes]:
        """POST one request; status and body."""
        headers, body = request
        try:
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise
        return response.status, response.read()

    def close(self) -> None:
        """Close the connection (the next post opens a new one)."""
        self.connection.close()


def apiserver_add_event(obj: Mapping[str, Any]) -> Request:
    """The ``resource.add`` CloudEvent an ApiServerSource sends for a new SecurityEvent."""
    name = obj["metadata"]["name"]
    attributes = {
        "type": "dev.knative.apiserver.resource.add", "source": "https://10.96.0.1:443",
        "id": str(uuid.uuid4()), "datacontenttype": "application/json",
        "subject": f"/apis/amtd.r6security.com/v1beta1/securityevents/{name}",
        "kind": "SecurityEvent", "apiversion": "amtd.r6security.com/v1beta1", "name": name,
    }  # fmt: skip
    return as_binary(attributes, dict(obj))


def falco_request(pod: str, rule: str, token: str, when: str | None = None) -> Request:
    """A Falco ``http_output`` alert POST (JSON, bearer token), as Falcosidekick's webhook sends."""
    stamp = when or time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    alert = falco_alert(NAMESPACE, pod, rule=rule, time=stamp, uuid=None)  # no uuid: http_output
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return headers, json.dumps(alert).encode()


@contextlib.contextmanager
def run_stack() -> Iterator[tuple[Stack, str]]:
    """The whole embedded stack as deployed locally, with a fresh ingest token; and the token."""
    token = secrets.token_urlsafe(24)
    overrides = {name: {"INGEST_TOKEN": token} for name in INGESTERS}
    with (
        tempfile.TemporaryDirectory(prefix="amtd-bench-stack-") as state,
        Stack(ROOT, Path(state), env_overrides=overrides) as stack,
    ):
        yield stack, token


def read_process_stats() -> Iterator[tuple[Path, list[str]]]:
    """Each live process's /proc folder and the fields of its ``stat`` after the command name
    (state, ppid, pgrp, ...; utime and stime are the 12th and 13th). Gone ones are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield entry, (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile


def peak_rss_bytes(group: int) -> int:
    """The largest peak resident set (VmHWM) among the processes of process group ``group``
    (a function: gunicorn's master and its worker)."""
    peak = 0
    for entry, fields in read_process_stats():
        if int(fields[2]) != group:
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        line = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), "VmHWM: 0 kB")
        peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def cpu_seconds_of_tree(root: int) -> float:
    """User plus system CPU seconds used so far by process ``root`` and all its descendants
    alive now (the stack's process, its functions' gunicorn masters and workers, its adapters)."""
    parents, ticks = {}, {}
    for entry, fields in read_process_stats():
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    used = sum(count for pid, count in ticks.items() if is_descendant(pid, root, parents))
    return used / os.sysconf("SC_CLK_TCK")


def is_descendant(pid: int, root: int, parents: dict[int, int]) -> bool:
    """Whether ``pid`` is ``root`` or below it in the process tree ``parents`` (pid → ppid)."""
    while pid > 1:
        if pid == root:
            return True
        pid = parents.get(pid, 0)
    return pid == root
