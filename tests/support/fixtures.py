"""Fixtures several test modules share, made by factories: assign one to the fixture's name.

``cluster = world_fixture("timer", ("shop", "other"))`` at module level is the fixture
``cluster`` (pytest names a fixture after the attribute holding it), so modules that need the
same world or the same in-process function say so in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import Cluster
from support.functions import load_function_client
from support.ingesting import expect_token
from support.standins import Stand, open_world


def client_fixture(function: str) -> Callable[[], FlaskClient]:
    """A module-scoped fixture: ``function`` in-process (it connects per test, as its world)."""

    @pytest.fixture(scope="module")
    def client() -> FlaskClient:
        return load_function_client(function)

    return client


def connected_client_fixture(function: str, user: str) -> Callable[..., Iterator[FlaskClient]]:
    """A fixture: ``function`` in-process on the ``stand``, acting as ``user``."""

    @pytest.fixture
    def client(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
        with stand.connect_functions(user, monkeypatch):
            yield load_function_client(function)

    return client


def world_fixture(
    user: str, namespaces: Sequence[str] = ("shop",), *, token: bool = False,
    unset: Sequence[str] = (),
) -> Callable[..., Iterator[Cluster]]:  # fmt: skip
    """A fixture: CRDs and ``namespaces``; functions act as ``user``, expect TOKEN if ``token``.

    ``unset`` names environment variables removed for the test (switches left at defaults).
    """

    @pytest.fixture
    def world(
        apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Cluster]:
        if token:
            expect_token(monkeypatch)
        for name in unset:
            monkeypatch.delenv(name, raising=False)
        with open_world(apiserver, kubeconfig, user, monkeypatch, namespaces) as own:
            yield own

    return world
