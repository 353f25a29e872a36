"""Fixtures for the local eventing tests: scriptable HTTP receivers and a running broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.dynamic import DynamicClient

from amtd_stack.brokers import BrokerIngress, EventRouter, TriggerRoute
from amtd_stack.kubeclients import apply_objects, new_dynamic_client

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Recorded:
    """One request a Receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What a Receiver answers; ``stall`` holds the answer until the receiver stops."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: bool = False


Script = Callable[[Recorded, int], Answer]


class Receiver:
    """A loopback HTTP endpoint answering from a script and recording every request."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Recorded] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL of the receiver."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def _record(self, recorded: Recorded) -> Answer:
        with self._lock:
            self.requests.append(recorded)
            number = len(self.requests)
        return self.script(recorded, number)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                answer = receiver._record(recorded)
                if answer.stall:
                    receiver.released.wait(20)
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def stop(self) -> None:
        """Release stalled requests and stop serving."""
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def answers(*sequence: Answer) -> Script:
    """A script answering from ``sequence`` in order, repeating the last answer."""
    return lambda recorded, number: sequence[min(number, len(sequence)) - 1]


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    """Poll ``predicate`` until it holds or the deadline passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """A factory of receivers (``receiver(script)``), all stopped at teardown."""
    started: list[Receiver] = []

    def make(script: Script | None = None) -> Receiver:
        started.append(Receiver(script or answers(Answer())))
        return started[-1]

    yield make
    for one in started:
        one.stop()


@dataclass
class RunningBroker:
    """A router plus its HTTP ingress for broker ``amtd-system/default``."""

    router: EventRouter
    ingress: BrokerIngress

    @property
    def url(self) -> str:
        """The broker's ingress URL."""
        return self.ingress.broker_url("amtd-system", "default")


@pytest.fixture
def broker() -> Iterator[Callable[..., RunningBroker]]:
    """A factory ``broker(routes)`` of running brokers, all stopped at teardown."""
    started: list[RunningBroker] = []

    def make(routes: list[TriggerRoute]) -> RunningBroker:
        router = EventRouter([("amtd-system", "default")], routes)
        started.append(RunningBroker(router, BrokerIngress(router)))
        return started[-1]

    yield make
    for one in started:
        one.router.stop(wait=False)
        one.ingress.stop()
        one.router.stop(wait=True)


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[StandIn]:
    """A fresh API server stand-in with the project CRDs and namespace amtd-system applied."""
    from amtd_stack.apiserver import start_apiserver

    server = start_apiserver(host="127.0.0.1", port=0, workloads=False)
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "admin-kubeconfig", user="admin")
        crds = sorted((ROOT / "knative" / "crds").glob("*.yaml"))
        objects = [
            (doc, str(path)) for path in crds for doc in yaml.safe_load_all(path.read_text())
        ]
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "amtd-system"}}
        apply_objects(kubeconfig, [*objects, (namespace, "test")])
        yield StandIn(server, Path(kubeconfig), new_dynamic_client(Path(kubeconfig)))
    finally:
        server.stop()


@dataclass
class StandIn:
    """The running API stand-in, an admin kubeconfig and a DynamicClient on it."""

    server: Any
    kubeconfig: Path
    client: DynamicClient
