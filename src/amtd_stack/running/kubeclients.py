"""Official-client connections to the API server stand-in: clients per identity, discovery, apply.

The stack talks to the stand-in exactly like a cluster tool would: a kubeconfig per identity, a
DynamicClient with discovery, and "create, or replace on AlreadyExists" for applying manifests.
"""

from __future__ import annotations

import base64
import functools
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.dynamic.resource import Resource

from amtd_stack.errors import StackError

# Order of application: CRDs register kinds, namespaces must exist before namespaced objects.
APPLY_ORDER = {"CustomResourceDefinition": 0, "Namespace": 1}


@functools.cache
def discovery_cache_dir() -> tempfile.TemporaryDirectory[str]:
    """Where discovery caches live, one file per client; removed when the process exits."""
    return tempfile.TemporaryDirectory(prefix="amtd-discovery-")


def new_api_client(kubeconfig: Path) -> ApiClient:
    """An ApiClient configured from a kubeconfig file (no global state touched)."""
    client: ApiClient = config.new_client_from_config(config_file=str(kubeconfig))
    return client


def new_dynamic_client(kubeconfig: Path) -> DynamicClient:
    """A DynamicClient whose discovery cache is private to this client (fresh discovery)."""
    cache = Path(discovery_cache_dir().name) / f"{uuid.uuid4().hex}.json"
    return DynamicClient(new_api_client(kubeconfig), cache_file=str(cache))


def find_resource(client: DynamicClient, api_version: str, kind: str) -> Resource:
    """The discovered resource for apiVersion + kind; StackError naming it when unknown."""
    try:
        resource: Resource = client.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError as error:
        raise StackError(f"the API server serves no {kind} in {api_version}") from error
    return resource


def apply_object(client: DynamicClient, obj: Mapping[str, Any]) -> None:
    """Create the object, or replace it (keeping its resourceVersion) when it already exists."""
    resource = find_resource(client, str(obj["apiVersion"]), str(obj["kind"]))
    namespace = obj["metadata"].get("namespace") if resource.namespaced else None
    if resource.namespaced and not namespace:
        namespace = "default"
    try:
        client.create(resource, body=dict(obj), namespace=namespace)
    except DynamicApiError as error:
        if error.status != 409:
            raise
        current = client.get(resource, name=obj["metadata"]["name"], namespace=namespace)
        body = {**obj, "metadata": {**obj["metadata"]}}
        body["metadata"]["resourceVersion"] = current.metadata.resourceVersion
        client.replace(resource, body=body, namespace=namespace)


def apply_objects(kubeconfig: Path, objects: Iterable[tuple[Mapping[str, Any], str]]) -> None:
    """Apply (object, origin) pairs: CRDs first, then namespaces, then the rest.

    A refusal names the origin (the manifest file) and the object.
    """
    ordered = sorted(objects, key=lambda pair: APPLY_ORDER.get(str(pair[0]["kind"]), 2))
    client = new_dynamic_client(kubeconfig)  # lazy discovery re-discovers on a miss
    for obj, origin in ordered:
        try:
            apply_object(client, obj)
        except (ApiException, DynamicApiError, StackError) as error:
            name = f"{obj['kind']} {obj['metadata'].get('name')}"
            raise StackError(f"{origin}: applying {name} failed: {error}") from error


def read_object(kubeconfig: Path, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """One core/v1 object as a dict; StackError naming it if it cannot be read."""
    client = new_dynamic_client(kubeconfig)
    try:
        found = client.get(find_resource(client, "v1", kind), name=name, namespace=namespace)
    except DynamicApiError as error:
        raise StackError(f"{kind} {namespace}/{name} cannot be read: {error.status}") from error
    return dict(found.to_dict())


def read_secret_value(kubeconfig: Path, namespace: str, name: str, key: str) -> str:
    """One decoded value of a Secret (``data`` base64 or ``stringData``); StackError if absent."""
    secret = read_object(kubeconfig, "Secret", namespace, name)
    if key in (secret.get("data") or {}):
        return base64.b64decode(secret["data"][key]).decode()
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raise StackError(f"Secret {namespace}/{name} has no key {key!r}")


def read_config_map_value(kubeconfig: Path, namespace: str, name: str, key: str) -> str:
    """One value of a ConfigMap's ``data``; StackError if absent."""
    found = read_object(kubeconfig, "ConfigMap", namespace, name)
    if key in (found.get("data") or {}):
        return str(found["data"][key])
    raise StackError(f"ConfigMap {namespace}/{name} has no key {key!r}")
