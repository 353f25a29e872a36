"""The embedded local stack: API stand-in, applied manifests, function processes and eventing.

``Stack(root, state_dir).start()`` plays the cluster for ``amtd up``, the demo and e2e tests by
executing the committed knative/ manifests: nothing here is a second copy of the routing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from cloudevents.http import CloudEvent

from amtd.model.signatures import generate_signing_key, make_key_manifests
from amtd_stack.apiserver import ApiServer, start_apiserver
from amtd_stack.errors import StackError
from amtd_stack.eventing.apiserversources import ApiServerSourceDefinition
from amtd_stack.eventing.brokers import BrokerIngress, DeadLetter, EventRouter, TriggerRoute
from amtd_stack.eventing.deliveries import Destination, select_delivery
from amtd_stack.eventing.delivering import DeliveryAttempt
from amtd_stack.eventing.pingsources import PingSourceDefinition, PingSourceRunner
from amtd_stack.eventing.sinkbindings import SinkBindingDefinition, sink_environment
from amtd_stack.eventing.sources import EmittedLog, SourceContext, make_sink_sender
from amtd_stack.eventing.triggers import BrokerDefinition, TriggerDefinition
from amtd_stack.running.adapters import AdapterProcess, AdapterSpec
from amtd_stack.running.definitions import (
    build_environment,
    read_secret_variables,
    withhold_secrets,
)
from amtd_stack.running.kubeclients import (
    apply_objects,
    read_config_map_value,
    read_secret_value,
)
from amtd_stack.running.planning import StackPlan, plan_stack, resolve_destination
from amtd_stack.running.processes import FunctionProcess, start_functions, stop_functions
from amtd_stack.running.supervising import Degradation, RestartPolicy, Supervisor

LOG = logging.getLogger(__name__)
SYSTEM_NAMESPACE = "amtd-system"
ALL_FUNCTIONS = "*"
NOTIFY_SECRET = "amtd-notify"


class Stack:
    """Start and stop the whole local system; a context manager.

    ``env_overrides`` maps a function name (or ``"*"`` for all) to environment variables that
    win over func.yaml, e.g. ``{"ingest-falco": {"INGEST_AUTH": "disabled"}}``. A variable some
    func.yaml fills from a Secret reaches, through ``"*"`` or the parent's environment, only the
    functions whose func.yaml names it (as on a cluster). A function process that crashes is
    restarted within ``restart_policy`` (see ``amtd_stack.running.supervising``). ``notify``
    fills the Secret amtd-notify (e.g. ``{"kind": "webhook", "url": ...}``; default: off).
    """

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        env_overrides: Mapping[str, Mapping[str, str]] | None = None,
        restart_policy: RestartPolicy | None = None,
        notify: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.notify = dict(notify or {})
        self.state_dir = Path(state_dir)
        self.env_overrides = dict(env_overrides or {})
        self.plan = StackPlan()
        self.apiserver: ApiServer | None = None
        self.router: EventRouter | None = None
        self.ingress: BrokerIngress | None = None
        self.functions: dict[str, FunctionProcess] = {}
        self.restart_policy = restart_policy or RestartPolicy()
        self.supervisor: Supervisor | None = None  # kept after stop(): its records stay readable
        self.emitted: dict[str, EmittedLog] = {}
        self._pings: dict[tuple[str, str], PingSourceRunner] = {}
        self._watchers: list[AdapterProcess] = []
        self._stopping = threading.Event()

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig for tests and kubectl."""
        return self.state_dir / "kubeconfig"

    @property
    def endpoints_path(self) -> Path:
        """Where ``endpoints.json`` is written."""
        return self.state_dir / "endpoints.json"

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Stack:
        """Plan (refusing bad manifests), then start everything; stop all on any failure."""
        self.plan = plan_stack(self.root / "knative", self.root / "functions")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_apiserver()
            self._start_broker()
            self._prepare_functions()
            self._start_routes()
            start_functions(list(self.functions.values()))
            self.supervisor = Supervisor(self.functions, self.restart_policy)
            self.supervisor.start()
            self._start_sources()
        except BaseException:
            self.stop()
            raise
        self._write_endpoints()
        return self

    def _api(self) -> ApiServer:
        if self.apiserver is None:
            raise StackError("the stack is not running")
        return self.apiserver

    def _start_apiserver(self) -> None:
        # RBAC enforced: each function holds only its ServiceAccount's rights, as on a cluster.
        self.apiserver = start_apiserver(host="127.0.0.1", port=0, workloads=True,
                                         authorization=True)  # fmt: skip
        self.apiserver.write_kubeconfig(self.kubeconfig, user="admin")
        apply_objects(self.kubeconfig, [(m.obj, str(m.path)) for m in self.plan.objects])
        self._create_signing_keys()
        self._create_notify_secret()

    def _create_signing_keys(self) -> None:
        """A fresh matcher key pair per stack, stored as on a cluster (docs/DEPLOY.md) before
        any function starts: the func.yaml references resolve to it."""
        manifests = make_key_manifests(generate_signing_key(), SYSTEM_NAMESPACE)
        apply_objects(self.kubeconfig, [(obj, "the stack's signing keys") for obj in manifests])

    def _create_notify_secret(self) -> None:
        """The Secret amtd-notify (knative/notify-secret.yaml) before any function starts:
        notifications off unless ``notify`` gives its keys (``kind``, ``url``...)."""
        data = {"kind": "none", "url": "", "template": "", "token": "", **self.notify}
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": data,
                  "metadata": {"name": NOTIFY_SECRET, "namespace": SYSTEM_NAMESPACE}}  # fmt: skip
        apply_objects(self.kubeconfig, [(secret, "the stack's notify settings")])

    def _start_broker(self) -> None:
        """The router starts without routes: they need the ingress and function URLs."""
        self.router = EventRouter([(b.namespace, b.name) for b in self.plan.brokers], [])
        self.ingress = BrokerIngress(self.router)

    def _prepare_functions(self) -> None:
        for definition in self.plan.functions.values():
            log = self.state_dir / "logs" / f"{definition.name}.log"
            self.functions[definition.name] = FunctionProcess(
                definition, self._function_environment(definition.name), log
            )
        for binding in self.plan.sinkbindings:  # once every port is known: a sink may be one
            self._bind_sink(binding)

    def _bind_sink(self, binding: SinkBindingDefinition) -> None:
        """K_SINK (+ K_CE_OVERRIDES) for the subject; an env_overrides value wins."""
        overrides = {**self.env_overrides.get(ALL_FUNCTIONS, {}),
                     **self.env_overrides.get(binding.subject, {})}  # fmt: skip
        injected = sink_environment(self._resolve(binding.sink), binding.extensions)
        kept = {key: value for key, value in injected.items() if key not in overrides}
        self.functions[binding.subject].add_environment(kept)

    def _start_routes(self) -> None:
        assert self.router is not None
        self.router.routes = [self._route(t) for t in self.plan.triggers]

    def _function_environment(self, name: str) -> dict[str, str]:
        definition = self.plan.functions[name]
        identity = self._write_identity(definition.service_account, definition.service_account)
        secret_variables = read_secret_variables(self.plan.functions.values())
        shared = self.env_overrides.get(ALL_FUNCTIONS, {})
        overrides = {
            "KUBECONFIG": str(identity),
            "AMTD_NAMESPACE": SYSTEM_NAMESPACE,
            "PYTHONUNBUFFERED": "1",
            **withhold_secrets(shared, definition, secret_variables),
            **self.env_overrides.get(name, {}),  # named for this function: given as asked
        }
        base = withhold_secrets(os.environ, definition, secret_variables)
        return build_environment(
            definition, self._read_secret, overrides, base, self._read_config_map
        )

    def _write_identity(self, filename: str, service_account: str) -> Path:
        """A kubeconfig with its own token for ServiceAccount amtd-system/``service_account``,
        at ``kubeconfigs/<filename>.yaml``."""
        path = self.state_dir / "kubeconfigs" / f"{filename}.yaml"
        return self._api().write_kubeconfig(path, service_account, SYSTEM_NAMESPACE)

    def _read_secret(self, namespace: str, name: str, key: str) -> str:
        return read_secret_value(self.kubeconfig, namespace, name, key)

    def _read_config_map(self, namespace: str, name: str, key: str) -> str:
        return read_config_map_value(self.kubeconfig, namespace, name, key)

    def _route(self, trigger: TriggerDefinition) -> TriggerRoute:
        broker = self._broker(trigger)
        delivery = select_delivery(trigger.delivery, broker.delivery)
        sink = delivery.dead_letter_sink
        return TriggerRoute(
            namespace=trigger.namespace,
            name=trigger.name,
            broker=trigger.broker,
            filter=trigger.filter,
            subscriber_url=self._resolve(trigger.subscriber),
            delivery=delivery,
            dead_letter_url=None if sink is None else self._resolve(sink),
        )

    def _broker(self, trigger: TriggerDefinition) -> BrokerDefinition:
        key = (trigger.namespace, trigger.broker)
        return next(b for b in self.plan.brokers if (b.namespace, b.name) == key)

    def _resolve(self, destination: Destination) -> str:
        urls = {name: process.url for name, process in self.functions.items()}
        assert self.ingress is not None
        return resolve_destination(destination, urls, self.ingress.broker_url)

    def _start_sources(self) -> None:
        for source in self.plan.apiserversources:
            self._watchers.append(self._adapter(source).start())
        for ping in self.plan.pingsources:
            pinger = PingSourceRunner(ping, self._source_context(ping, "default"))
            self._pings[(ping.namespace, ping.name)] = pinger
            pinger.start()

    def _adapter(self, source: ApiServerSourceDefinition) -> AdapterProcess:
        """The adapter process of an ApiServerSource (:mod:`amtd_stack.running.adapters`)."""
        name = f"source-{source.namespace}-{source.name}"
        identity = self._write_identity(f"source-{source.service_account}", source.service_account)
        journal = self.state_dir / "sources" / f"{name}.jsonl"
        journal.parent.mkdir(parents=True, exist_ok=True)
        spec = AdapterSpec(source, identity, self._api().url, self._resolve(source.sink), journal)
        log = self.state_dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return AdapterProcess(spec, journal.with_suffix(".spec"), log)

    def _source_context(self, source: PingSourceDefinition, service_account: str) -> SourceContext:
        assert self.router is not None
        identity = self._write_identity(f"source-{service_account}", service_account)
        label = f"{source.namespace}/{source.name}"
        emitted = self.emitted.setdefault(label, EmittedLog())
        url = self._resolve(source.sink)
        sender = make_sink_sender(
            f"source {label}", url, self.router.attempts, self._stopping, self.router.connections
        )
        return SourceContext(identity, self._api().url, sender, emitted)

    def _write_endpoints(self) -> None:
        self.endpoints_path.write_text(json.dumps(self.endpoints(), indent=2) + "\n")

    def endpoints(self) -> dict[str, Any]:
        """API server URL, the main broker URL, every broker and function URL, kubeconfig."""
        assert self.ingress is not None
        brokers = {f"{ns}/{n}": self.ingress.broker_url(ns, n) for ns, n in self.broker_keys()}
        return {
            "apiserver": self._api().url,
            "broker": self.broker_url() if self.plan.brokers else None,
            "brokers": brokers,
            "functions": {name: process.url for name, process in self.functions.items()},
            "kubeconfig": str(self.kubeconfig),
        }

    def broker_keys(self) -> list[tuple[str, str]]:
        """(namespace, name) of every broker, sorted."""
        return sorted((b.namespace, b.name) for b in self.plan.brokers)

    def broker_url(self, namespace: str = SYSTEM_NAMESPACE, name: str = "default") -> str:
        """The ingress URL producers POST CloudEvents to."""
        assert self.ingress is not None
        return self.ingress.broker_url(namespace, name)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """Events that failed finally and had no (working) dead-letter sink."""
        return list(self.router.dead_letters) if self.router else []

    @property
    def degradations(self) -> list[Degradation]:
        """Functions left down after crashing past the restart bound (empty: healthy)."""
        return list(self.supervisor.degradations) if self.supervisor else []

    @property
    def attempts(self) -> list[DeliveryAttempt]:
        """Every delivery attempt so far (subscribers, dead-letter sinks, source sends)."""
        return self.router.attempts.snapshot() if self.router else []

    def wait_idle(self, timeout_s: float = 20.0) -> bool:
        """Wait until no broker delivery is pending; False on timeout."""
        return self.router.wait_idle(timeout_s) if self.router else True

    def fire_ping(self, name: str, namespace: str = SYSTEM_NAMESPACE) -> CloudEvent:
        """Make a PingSource emit one event now; returns the event."""
        runner = self._pings.get((namespace, name))
        if runner is None:
            raise StackError(f"no PingSource {namespace}/{name}")
        return runner.fire()

    def source_events(self, name: str, namespace: str = SYSTEM_NAMESPACE) -> list[CloudEvent]:
        """Events a source (ApiServerSource or PingSource) emitted so far."""
        adapter = self._find_watcher(name, namespace)
        if adapter is not None:
            return adapter.emitted()
        log = self.emitted.get(f"{namespace}/{name}")
        return log.snapshot() if log else []

    def stop_source(self, name: str, namespace: str = SYSTEM_NAMESPACE) -> None:
        """Stop an ApiServerSource's adapter: changes made meanwhile are never sent (an outage)."""
        self._watcher(name, namespace).stop()

    def start_source(self, name: str, namespace: str = SYSTEM_NAMESPACE) -> None:
        """Start a stopped ApiServerSource's adapter afresh: it lists, then watches from there."""
        old = self._watcher(name, namespace)
        fresh = old.restarted()
        self._watchers[self._watchers.index(old)] = fresh
        fresh.start()

    def _watcher(self, name: str, namespace: str) -> AdapterProcess:
        found = self._find_watcher(name, namespace)
        if found is None:
            raise StackError(f"no ApiServerSource {namespace}/{name}")
        return found

    def _find_watcher(self, name: str, namespace: str) -> AdapterProcess | None:
        key = (namespace, name)
        return next((w for w in self._watchers if (w.source.namespace, w.source.name) == key), None)

    def stop(self) -> None:
        """Stop the supervisor (a stopping stack restarts nothing), sources, eventing, functions
        and the API stand-in; safe to call twice."""
        self._stopping.set()
        router, functions = self.router, list(self.functions.values())
        steps: list[Callable[[], None]] = [
            *([self.supervisor.stop] if self.supervisor else []),
            *(runner.stop for runner in self._watchers),
            *(runner.stop for runner in self._pings.values()),
            *([lambda: router.stop(wait=False)] if router else []),  # abort backoffs first
            *([self.ingress.stop] if self.ingress else []),
            lambda: stop_functions(functions),
            *([lambda: router.stop(wait=True)] if router else []),
            *([self.apiserver.stop] if self.apiserver else []),
        ]
        for step in steps:
            try:
                step()
            except Exception:  # keep stopping the rest
                LOG.exception("stopping a stack component failed")
        self._watchers, self._pings, self.functions = [], {}, {}
        self.router = None
        self.ingress = None
        self.apiserver = None
