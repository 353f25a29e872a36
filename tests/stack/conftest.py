"""Fixtures for the API server stand-in tests: official clients bound to the `kubeconfig`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from .helpers import project_crds


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """An official ApiClient configured from the test kubeconfig."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api over real HTTP."""
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    """AppsV1Api over real HTTP."""
    return client.AppsV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    """CustomObjectsApi over real HTTP."""
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def crds(api_client: client.ApiClient) -> list[dict[str, Any]]:
    """The project's CRDs, created through the API (so the types are registered)."""
    ext = client.ApiextensionsV1Api(api_client)
    docs = project_crds()
    for doc in docs:
        ext.create_custom_resource_definition(doc)
    return docs
