"""ApiServerSource: watch Kubernetes resources and emit Knative's apiserver CloudEvents.

Like the Knative adapter, objects that exist when the source starts get no ``add`` event (the
watch starts at the listed resourceVersion) and a watch gap (410 Gone) is skipped, not replayed.
Event construction is pure; the watch threads are the side effect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource
from kubernetes.watch.watch import iter_resp_lines

from amtd_stack.eventing.deliveries import Destination
from amtd_stack.eventing.labelselectors import format_label_selector
from amtd_stack.eventing.sources import (
    SOURCES_V1,
    SourceContext,
    build_event,
    parse_extensions,
    parse_sink,
)
from amtd_stack.manifests import Manifest, namespace_of
from amtd_stack.running.kubeclients import find_resource, new_dynamic_client

LOG = logging.getLogger(__name__)
MODES = {"Reference": "ref", "Resource": "resource"}
VERBS = {"ADDED": "add", "MODIFIED": "update", "DELETED": "delete"}
GONE = 410
RETRY_PAUSE_S = 0.5
STOP_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class WatchedResource:
    """One ``spec.resources[]`` entry: apiVersion, kind and an optional label selector string."""

    api_version: str
    kind: str
    label_selector: str | None = None


@dataclass(frozen=True)
class ApiServerSourceDefinition:
    """An ApiServerSource as the stack runs it."""

    namespace: str
    name: str
    resources: tuple[WatchedResource, ...]
    mode: str
    service_account: str
    sink: Destination
    extensions: Mapping[str, str]
    namespace_selector: str | None  # None: own namespace; "": all; else a label selector
    owner: tuple[str, str] | None
    path: Path


@dataclass(frozen=True)
class WatchScope:
    """What one watch covers: a discovered resource, a namespace (None = all), a selector."""

    resource: Resource
    namespace: str | None
    label_selector: str | None


def is_apiserversource(manifest: Manifest) -> bool:
    """True for a sources.knative.dev/v1 ApiServerSource."""
    return manifest.api_version == SOURCES_V1 and manifest.kind == "ApiServerSource"


def parse_resources(manifest: Manifest) -> tuple[WatchedResource, ...]:
    """``spec.resources``: a non-empty list of {apiVersion, kind, selector?}."""
    entries = manifest.spec.get("resources")
    if not isinstance(entries, list) or not entries:
        raise manifest.refuse("spec.resources", "must be a non-empty list")
    resources = []
    for index, entry in enumerate(entries):
        field = f"spec.resources[{index}]"
        if not isinstance(entry, Mapping) or not entry.get("apiVersion") or not entry.get("kind"):
            raise manifest.refuse(field, "needs apiVersion and kind")
        selector = entry.get("selector")
        text = None
        if selector is not None:
            text = format_label_selector(selector, f"{field}.selector", manifest) or None
        resources.append(WatchedResource(str(entry["apiVersion"]), str(entry["kind"]), text))
    return tuple(resources)


def parse_apiserversource(manifest: Manifest) -> ApiServerSourceDefinition:
    """An ApiServerSourceDefinition; ManifestError naming the file and field."""
    spec = manifest.spec
    mode = spec.get("mode", "Reference")
    if mode not in MODES:
        raise manifest.refuse("spec.mode", f"must be Reference or Resource, got {mode!r}")
    selector = spec.get("namespaceSelector")
    owner = spec.get("owner")
    if owner is not None and not (isinstance(owner, Mapping) and owner.get("kind")):
        raise manifest.refuse("spec.owner", "needs apiVersion and kind")
    return ApiServerSourceDefinition(
        namespace=namespace_of(manifest),
        name=manifest.name,
        resources=parse_resources(manifest),
        mode=mode,
        service_account=str(spec.get("serviceAccountName") or "default"),
        sink=parse_sink(manifest),
        extensions=parse_extensions(manifest),
        namespace_selector=None
        if selector is None
        else format_label_selector(selector, "spec.namespaceSelector", manifest),
        owner=None if owner is None else (str(owner.get("apiVersion", "")), str(owner["kind"])),
        path=manifest.path,
    )


def build_subject(api_version: str, plural: str, namespace: str, name: str) -> str:
    """``/apis/<apiVersion>/namespaces/<ns>/<plural>/<name>`` as Knative's adapter builds it:
    ``/apis/v1/...`` for core kinds, ``namespaces//`` for cluster-scoped ones (pure)."""
    return f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}"


def build_apiserver_event(
    source: ApiServerSourceDefinition,
    api_url: str,
    plural: str,
    watch_type: str,
    obj: Mapping[str, Any],
) -> CloudEvent:
    """The CloudEvent Knative's adapter emits for one watch event (pure but for the random id)."""
    metadata = obj.get("metadata") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": api_url,
        "type": f"dev.knative.apiserver.{MODES[source.mode]}.{VERBS[watch_type]}",
        "subject": build_subject(api_version, plural, namespace, name),
        "datacontenttype": "application/json",
        "kind": kind,
        "apiversion": api_version,
        "name": name,
        "namespace": namespace,  # present, and empty for cluster-scoped kinds
        **source.extensions,
    }
    data: Mapping[str, Any] = obj
    if source.mode == "Reference":
        data = build_reference(kind, namespace, name, api_version)
    return build_event(attributes, json.dumps(data).encode())


def build_reference(kind: str, namespace: str, name: str, api_version: str) -> dict[str, str]:
    """Reference-mode data: kind, namespace (omitted when cluster-scoped), name, apiVersion."""
    scope = {"namespace": namespace} if namespace else {}
    return {"kind": kind, **scope, "name": name, "apiVersion": api_version}


def is_owned_by(obj: Mapping[str, Any], owner: tuple[str, str] | None) -> bool:
    """True without an owner filter, or when an ownerReference has the owner's kind (pure)."""
    if owner is None:
        return True
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(
        ref.get("kind") == owner[1] and (not owner[0] or ref.get("apiVersion") == owner[0])
        for ref in references
    )


class ApiServerSourceRunner:
    """Watch threads for one ApiServerSource, one per resource, stoppable at any time."""

    def __init__(self, source: ApiServerSourceDefinition, context: SourceContext) -> None:
        self.source = source
        self.context = context
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._responses: set[Any] = set()  # open urllib3 watch responses
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """List every resource (so existing objects get no add event), then watch from there."""
        client = new_dynamic_client(self.context.kubeconfig)
        for watched in self.source.resources:
            resource = find_resource(client, watched.api_version, watched.kind)
            scope = WatchScope(resource, self._watch_namespace(resource), watched.label_selector)
            version = self._list_version(client, scope)
            thread = threading.Thread(
                target=self._watch_loop,
                args=(client, scope, version),
                name=f"apiserversource-{self.source.name}-{watched.kind}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _watch_namespace(self, resource: Resource) -> str | None:
        """Own namespace without a namespaceSelector; all namespaces with one; None = all."""
        if not resource.namespaced or self.source.namespace_selector is not None:
            return None
        return self.source.namespace

    def _list_version(self, client: DynamicClient, scope: WatchScope) -> str:
        listed = client.get(
            scope.resource, namespace=scope.namespace, label_selector=scope.label_selector
        )
        return str(listed.metadata.resourceVersion)

    def _watch_loop(self, client: DynamicClient, scope: WatchScope, version: str) -> None:
        while not self._stopping.is_set():
            try:
                version = self._watch_once(client, scope, version)
            except Exception as error:  # the API went away, or answered an error
                version = self._recover(client, scope, version, error)

    def _watch_once(self, client: DynamicClient, scope: WatchScope, version: str) -> str:
        """One watch request from ``version``; returns the last resourceVersion seen."""
        response = client.get(
            scope.resource,
            namespace=scope.namespace,
            label_selector=scope.label_selector,
            resource_version=version,
            watch=True,
            serialize=False,
        )
        if not self._register(response):
            return version
        try:
            for line in iter_resp_lines(response):
                version = self._handle_line(client, scope, line, version)
        finally:
            with self._lock:
                self._responses.discard(response)
            response.release_conn()
        return version

    def _handle_line(
        self, client: DynamicClient, scope: WatchScope, line: str, version: str
    ) -> str:
        """Emit for one watch line; raise WatchError on a 410 ERROR line."""
        if not line.strip():
            return version
        event = json.loads(line)
        raw = event.get("object") or {}
        if event.get("type") == "ERROR":
            raise WatchError(int(raw.get("code") or 0), str(raw.get("message")))
        self._emit(client, scope, str(event.get("type")), raw)
        return str((raw.get("metadata") or {}).get("resourceVersion") or version)

    def _recover(
        self, client: DynamicClient, scope: WatchScope, version: str, error: Exception
    ) -> str:
        """After a failed watch: relist on 410 Gone (the gap is skipped), else wait and retry."""
        if self._stopping.is_set():
            return version
        if getattr(error, "status", None) == GONE:
            LOG.warning("source %s: watch expired, events in the gap are skipped", self.source.name)
            with contextlib.suppress(Exception):
                return self._list_version(client, scope)
        else:
            LOG.warning("source %s: watch failed (%s), retrying", self.source.name, error)
        self._stopping.wait(RETRY_PAUSE_S)
        return version

    def _register(self, response: Any) -> bool:
        """Track an open watch response so stop() can cut it; False (closed) when stopping."""
        with self._lock:
            if not self._stopping.is_set():
                self._responses.add(response)
                return True
        response.close()
        return False

    def _emit(
        self, client: DynamicClient, scope: WatchScope, kind: str, raw: dict[str, Any]
    ) -> None:
        if self._stopping.is_set() or kind not in VERBS or not is_owned_by(raw, self.source.owner):
            return
        if not self._is_selected_namespace(client, scope, raw):
            return
        event = build_apiserver_event(
            self.source, self.context.api_url, scope.resource.name, kind, raw
        )
        try:
            self.context.emit(event)
        except Exception:  # a broken sink must not end the watch
            LOG.exception("source %s could not send event %s", self.source.name, event["id"])

    def _is_selected_namespace(
        self, client: DynamicClient, scope: WatchScope, raw: Mapping[str, Any]
    ) -> bool:
        """With a label namespaceSelector, only objects in namespaces whose labels match."""
        selector = self.source.namespace_selector
        if not selector or not scope.resource.namespaced:
            return True
        namespaces = find_resource(client, "v1", "Namespace")
        listed = client.get(namespaces, label_selector=selector)
        names = {item.metadata.name for item in listed.items}
        return (raw.get("metadata") or {}).get("namespace") in names

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every watch by shutting its connection down, and wait for the threads.

        A thread still waiting for a watch's response headers cannot be interrupted; it exits
        when they arrive (or the API server stops) and emits nothing after ``stop()``.
        """
        self._stopping.set()
        with self._lock:
            for response in self._responses:
                cut_response(response)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                LOG.warning("source %s: watch thread still waiting; left to exit", self.source.name)


class WatchError(Exception):
    """A watch ERROR line (410 Gone when the resourceVersion is too old)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def cut_response(response: Any) -> None:
    """Unblock a thread reading a streaming urllib3 response (shutdown() needs urllib3 >= 2.3)."""
    with contextlib.suppress(Exception):
        if hasattr(response, "shutdown"):
            response.shutdown()
        else:
            response.close()
