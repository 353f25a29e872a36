"""Kube API: the one module of the core that talks to the Kubernetes API server.

Everything goes through the official ``kubernetes`` client's ``ApiClient`` (configuration, auth,
TLS, connection pooling); responses are read as plain JSON dicts, which is all the functions
need and much cheaper than the client's model classes. ``kubernetes`` is imported on first
connect, not at import time, so functions that never reach the API do not pay for it.

Errors come back as the small hierarchy of :mod:`amtd.kube.apierrors`; calls the server turned
away without carrying them out are repeated as :mod:`amtd.kube.retrying` decides. (The client's
own ``client_go_retries`` repeats only reads, and up to ten times a Retry-After: longer than a
delivery's timeout, and nothing for the status write that records a delete.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from amtd import GROUP, VERSION
from amtd.kube.apierrors import ConflictError, NotFoundError, TransientError, translate_error
from amtd.kube.credentials import ThrottledRefresh
from amtd.kube.names import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    SUBRESOURCE,
    InvalidNameError,
    NameRule,
)
from amtd.kube.retrying import REPEATABLE_METHODS, compute_wait, is_repeatable
from amtd.kube.timeouts import Timeouts
from amtd.model.objects import JsonPatch, Object

LOG = logging.getLogger(__name__)
READ_CHUNK_BYTES = 1 << 16
WATCH_TIMEOUT_S = 240.0  # a watch the server ends after this is opened again
WATCH_IDLE_S = 30.0  # beyond it, a watch that sends nothing is broken
SELECTORS = {"label_selector": "labelSelector", "field_selector": "fieldSelector"}


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API, and the format the API server checks its names by."""

    group: str
    version: str
    plural: str
    namespaced: bool
    names: NameRule = DNS1123_SUBDOMAIN

    def collection_path(self, namespace: str | None = None) -> str:
        """The URL path of the collection (in ``namespace``, or across all of them).

        Raises InvalidNameError for a namespace the API server would refuse.
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:  # "" as None: across all namespaces
            base += f"/namespaces/{DNS1123_LABEL.segment('namespace', namespace)}"
        return f"{base}/{self.plural}"

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        """The URL path of one object, or of its subresource ``sub`` (no name: the collection).

        Every segment is checked (InvalidNameError before any request) and percent-encoded;
        an empty name is refused, never read as "the collection".
        """
        if name is None and not sub:
            return self.collection_path(namespace)
        if self.namespaced and not namespace:
            raise InvalidNameError("namespace", "", f"namespace ({self.plural} are namespaced)")
        path = f"{self.collection_path(namespace)}/{self.names.segment('name', name or '')}"
        return f"{path}/{SUBRESOURCE.segment('subresource', sub)}" if sub else path


PODS = Resource("", "v1", "pods", namespaced=True)
EVENTS = Resource("", "v1", "events", namespaced=True)
NETWORK_POLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", namespaced=True)
SECURITY_EVENTS = Resource(GROUP, VERSION, "securityevents", namespaced=False)
POLICIES = Resource(GROUP, VERSION, "adaptivemovingtargetdefenses", namespaced=True)

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


def load_client_configuration(config_file: str | None = None) -> Any:
    """In-cluster config when running in a pod, else the kubeconfig (given, or $KUBECONFIG)."""
    from kubernetes import client, config  # deferred: ~0.5 s of imports
    from urllib3.util.retry import Retry

    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not config_file:
        config.load_incluster_config(client_configuration=configuration)
    else:
        # $KUBECONFIG read now: the client's own default was fixed when kubernetes was imported
        config.load_kube_config(
            config_file=config_file or os.environ.get("KUBECONFIG"),
            client_configuration=configuration,
        )
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook = ThrottledRefresh(configuration.refresh_api_key_hook)
    configuration.retries = Retry(total=3, allowed_methods=REPEATABLE_METHODS)
    return configuration


class Cluster:
    """A connection to one API server; thread-safe (the client pools connections)."""

    def __init__(self, api_client: Any, timeouts: Timeouts | None = None) -> None:
        self.api_client = api_client
        self.timeouts = timeouts or Timeouts()

    @classmethod
    def connect(cls, config_file: str | None = None) -> Cluster:
        """Connect with the configuration of :func:`load_client_configuration`."""
        from kubernetes import client

        configuration = load_client_configuration(config_file)
        return cls(client.ApiClient(configuration), Timeouts.from_env(os.environ))

    def request(self, method: str, path: str, body: Any = None, **options: Any) -> Object:
        """One API call; returns the decoded JSON answer or raises an :class:`ApiError`.

        ``path`` comes from a :class:`Resource` (checked, encoded names), ``options["query"]``
        are sent as encoded query parameters, ``options["conditional"]`` says the call pins a
        resourceVersion (harmless to repeat). An answer that says the call was not carried out
        is repeated here a few times (:mod:`amtd.kube.retrying`); each try, answer read to its
        end, takes at most the connect bound plus the total bound (else TransientError).
        """
        repeats, conditional = 0, options.pop("conditional", False)
        while True:
            try:
                return self.request_once(method, path, body, **options)
            except TransientError as error:
                if not is_repeatable(method, path, error.status, repeats, conditional):
                    raise
                wait = compute_wait(repeats, error.retry_after_s, random.random())
                LOG.info("%s %s answered %s; repeated in %.2f s", method, path, error, wait)
                time.sleep(wait)
                repeats += 1

    def request_once(self, method: str, path: str, body: Any = None, **options: Any) -> Object:
        """One try of :meth:`request`, never repeated."""
        from urllib3.exceptions import HTTPError

        deadline = time.monotonic() + self.timeouts.connect_s + self.timeouts.total_s
        response = self.open(method, path, body, self.timeouts.total_s, **options)
        try:
            data = read_within(response.response, deadline)
        except HTTPError as error:
            raise TransientError(0, "Unreachable", str(error)) from None
        if not 200 <= response.status <= 299:
            retry_after = response.headers.get("Retry-After")
            raise translate_error(response.status, response.reason or "", data, retry_after)
        answer: Object = json.loads(data or b"{}")
        return answer

    def open(
        self, method: str, path: str, body: Any, read_s: float, **options: Any
    ) -> Any:  # fmt: skip
        """Send one call and return the client's response, its body unread (each socket read
        then waits at most ``read_s``); errors before the body as :class:`ApiError`."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", "Content-Type": options.pop("content_type", None)}
        try:
            # kubernetes >= 35: param_serialize builds the URL and auth, call_api only sends.
            verb, url, header_params, payload, form = self.api_client.param_serialize(
                method, path, query_params=list(options.pop("query", {}).items()),
                header_params={k: v for k, v in headers.items() if v}, body=body,
                auth_settings=["BearerToken"],
            )  # fmt: skip
            # (connect, read): urllib3 applies the read bound to each socket read, not in all
            return self.api_client.call_api(
                verb, url, header_params=header_params, body=payload, post_params=form,
                _request_timeout=(self.timeouts.connect_s, read_s),
            )  # fmt: skip
        except ApiException as error:
            raise translate_error(error.status or 0, error.reason or "", error.body) from None
        except HTTPError as error:
            raise TransientError(0, "Unreachable", str(error)) from None

    def watch(
        self, resource: Resource, since: str, namespace: str | None = None,
        timeout_s: float = WATCH_TIMEOUT_S,
    ) -> Iterator[Object]:  # fmt: skip
        """The collection's watch events (``{"type", "object"}``) from resourceVersion ``since``
        until the server ends the watch (after ``timeout_s``); TransientError if it breaks."""
        from urllib3.exceptions import HTTPError

        query = {"watch": "true", "resourceVersion": since, "timeoutSeconds": str(int(timeout_s))}
        path = resource.collection_path(namespace)
        response = self.open("GET", path, None, timeout_s + WATCH_IDLE_S, query=query)
        try:
            if not 200 <= response.status <= 299:
                raise translate_error(response.status, response.reason or "", response.read())
            for line in response.response:
                if line.strip():
                    yield json.loads(line)
        except (HTTPError, OSError, ValueError) as error:
            raise TransientError(0, "WatchBroken", str(error)) from None
        finally:
            response.response.release_conn()

    def collection_version(self, resource: Resource, namespace: str | None = None) -> str:
        """The resourceVersion a list of the collection is at now (a watch starts there)."""
        answer = self.request("GET", resource.collection_path(namespace), query={"limit": "1"})
        return str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def get(self, resource: Resource, name: str, namespace: str | None = None) -> Object:
        """Read one object; raises NotFoundError (InvalidNameError, unsent, for a bad name)."""
        return self.request("GET", resource.path(namespace, name))

    def find(self, resource: Resource, name: str, namespace: str | None = None) -> Object | None:
        """Read one object, or None when it does not exist."""
        try:
            return self.get(resource, name, namespace)
        except NotFoundError:
            return None

    def list(
        self, resource: Resource, namespace: str | None = None, **selectors: str
    ) -> list[Object]:
        """List objects, optionally by ``label_selector=`` / ``field_selector=`` (only those:
        nothing else, ``watch`` least of all, reaches the query)."""
        unknown = set(selectors) - set(SELECTORS)
        if unknown:
            raise TypeError(f"list() takes no selector {', '.join(sorted(unknown))}")
        query = {SELECTORS[key]: value for key, value in selectors.items() if value}
        path = resource.collection_path(namespace)
        items: list[Object] = self.request("GET", path, query=query)["items"]
        return items

    def create(
        self, resource: Resource, body: Object, namespace: str | None = None, sub: str = ""
    ) -> Object:
        """Create an object; raises ConflictError (AlreadyExists) when the name is taken.

        With ``sub``, POST ``body`` to that subresource of the object ``body`` names
        (``pods/{name}/eviction``).
        """
        if sub:
            path = resource.path(namespace, body["metadata"]["name"], sub)
            return self.request("POST", path, body)
        return self.request("POST", resource.collection_path(namespace), body)

    def patch(
        self, resource: Resource, name: str, patch: Any, namespace: str | None = None,
        kind: str = "merge", sub: str = "",
    ) -> Object:  # fmt: skip
        """Patch an object (``kind``: merge, json or strategic)."""
        path = resource.path(namespace, name, sub)
        return self.request("PATCH", path, patch, content_type=PATCH_TYPES[kind])

    def replace(self, resource: Resource, body: Object, sub: str = "") -> Object:
        """PUT an object back; raises ConflictError if its resourceVersion is stale. It must
        carry one (ValueError): a conditional PUT is what makes repeating it harmless."""
        meta = body["metadata"]
        path = resource.path(meta.get("namespace"), meta["name"], sub)  # names checked first
        if not meta.get("resourceVersion"):
            raise ValueError(f"replace of {meta['name']!r} without a resourceVersion")
        return self.request("PUT", path, body)

    def delete(
        self, resource: Resource, name: str, namespace: str | None = None,
        uid: str | None = None, grace_period_seconds: int | None = None,
        resource_version: str | None = None,
    ) -> Object:  # fmt: skip
        """Delete an object; with ``uid`` (and ``resource_version``), only that incarnation (and
        version), else ConflictError."""
        options: Object = {"kind": "DeleteOptions", "apiVersion": "v1"}
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        if any(preconditions.values()):
            options["preconditions"] = {key: value for key, value in preconditions.items() if value}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        return self.request("DELETE", resource.path(namespace, name), options)

    def mutate_status(
        self, resource: Resource, name: str, mutate: Callable[[Object], Object | None],
        namespace: str | None = None, attempts: int = 8, current: Object | None = None,
    ) -> Object | None:  # fmt: skip
        """Read, compute a new status with ``mutate`` (pure; None = no change), write it back.

        Optimistic concurrency: a 409 from a concurrent writer re-reads and recomputes, so no
        writer's record is lost. ``current``, the object as the caller just read it, saves the
        first read: if it is stale the write fails with a 409, and a "no change" found on it is
        checked again on a fresh read. Returns the written object, or None when nothing changed.
        """

        def put(current: Object) -> Object | None:
            status = mutate(current)
            if status is None:
                return None
            return self.replace(resource, {**current, "status": status}, sub="status")

        return self.write_status(resource, name, put, namespace, attempts, current)

    def patch_status(
        self, resource: Resource, name: str, plan: Callable[[Object], JsonPatch | None],
        namespace: str | None = None, attempts: int = 8, current: Object | None = None,
    ) -> Object | None:  # fmt: skip
        """:meth:`mutate_status` sending only the change: ``plan`` (pure; None = no change)
        gives the JSON Patch operations on ``current``. The patch also sets the resourceVersion
        read, which makes it conditional as a PUT is (409 when stale), so a large status is not
        sent whole for every record added to it."""

        def patch(current: Object) -> Object | None:
            operations = plan(current)
            if operations is None:
                return None
            meta = current["metadata"]
            pin = {"op": "replace", "path": "/metadata/resourceVersion",
                   "value": meta["resourceVersion"]}  # fmt: skip
            path = resource.path(meta.get("namespace"), meta["name"], "status")
            return self.request("PATCH", path, [pin, *operations], conditional=True,
                                content_type=PATCH_TYPES["json"])  # fmt: skip

        return self.write_status(resource, name, patch, namespace, attempts, current)

    def write_status(
        self, resource: Resource, name: str, write: Callable[[Object], Object | None],
        namespace: str | None, attempts: int, current: Object | None,
    ) -> Object | None:  # fmt: skip
        """The retry loop of :meth:`mutate_status`: ``write`` (the object read → the object
        written, or None: no change) until it is not refused with a 409."""
        fresh = current is None
        for _ in range(attempts):
            if current is None:
                current = self.get(resource, name, namespace)
            with contextlib.suppress(ConflictError):
                written = write(current)
                if written is not None or fresh:
                    return written
            current, fresh = None, True  # raced, or judged on the caller's copy: read again
        raise TransientError(
            409, "Conflict", f"status of {name} kept changing; gave up after retries"
        )


_SHARED: list[Cluster] = []
_SHARED_LOCK = threading.Lock()


def shared_cluster() -> Cluster:
    """The process's one connection, made on first use (functions serve many threads)."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(Cluster.connect())
        return _SHARED[0]


def reset_shared_cluster() -> None:
    """Forget the process's connection, so the next use reconnects (tests switch servers)."""
    with _SHARED_LOCK:
        _SHARED.clear()


def is_configurable() -> bool:
    """Readiness: whether a client configuration can be loaded here."""
    try:
        shared_cluster()
    except Exception:  # any config error means "not ready", never a crash
        return False
    return True


def read_within(response: Any, deadline: float) -> bytes:
    """A urllib3 response's body, read by the monotonic ``deadline`` or TransientError.

    Each socket read may wait only for the time left, so an answer that trickles in (a watch, a
    slow or hostile server) is cut at the deadline; the connection is then closed, not reused.
    """
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            response.close()
            response.release_conn()
            raise TransientError(0, "Timeout", "the API server's answer did not end in time")
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(remaining)
        chunk = response.read1(READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
