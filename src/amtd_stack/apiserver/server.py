"""The API server object: threaded HTTP on loopback, kubeconfigs, request log, faults, lifecycle.

Connections are kept alive between requests, as a real API server keeps them (HTTP/1.1), so a
client's connection pool is used as it would be in a cluster.
"""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from amtd_stack.serving import QuietHandler, RunningServer

from .authenticating import (
    TOKEN_EXTRA,
    Credential,
    Tokens,
    UserInfo,
    master_user,
    service_account_user,
)
from .controlling import Controllers
from .dispatching import Dispatcher, RequestLog
from .faults import FaultPlan, RequestRecord
from .handling import Api, Target
from .resources import BUILTINS, Registry
from .reviewing import REVIEW_TYPES
from .securing import Security
from .stamping import stamp_created
from .storing import Store

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
CLUSTER_NAME = "amtd-local"


class ApiServer:
    """A stateful Kubernetes API stand-in; use `start_apiserver()` to get a running one."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, workloads: bool = True,
        authorization: bool = False,
    ) -> None:  # fmt: skip
        self.store = Store()
        self.registry = Registry((*BUILTINS, *REVIEW_TYPES))
        self.tokens = Tokens()
        self.security = Security(self.store, self.tokens, enforcing=authorization)
        self.api = Api(self.store, self.registry)
        self._log = RequestLog()
        self._faults = FaultPlan()
        self._seed(workloads)
        self._controllers = Controllers(self.store, self.registry, workloads)
        app = Dispatcher(self.api, self._log, self._faults, lambda: self.address, self.security)
        self._server = RunningServer(app, host, port, handler=QuietHandler)
        self.host = host
        self.port = self._server.port

    @property
    def address(self) -> str:
        """host:port."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        return f"http://{self.address}"

    def _seed(self, workloads: bool) -> None:
        for name in INITIAL_NAMESPACES:
            self.api.create(self._target("", "namespaces"), {"metadata": {"name": name}})
        if workloads:
            node = {
                "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
            rtype = self.registry.lookup("", "v1", "nodes")
            assert rtype is not None
            self.store.write(("", "nodes"), stamp_created(rtype, node, ""))

    def _target(self, group: str, plural: str) -> Target:
        rtype = self.registry.lookup(group, "v1", plural)
        assert rtype is not None
        return Target(rtype)

    def start(self) -> ApiServer:
        """Serve in a background thread; returns once the socket accepts connections."""
        self._controllers.start()
        self._server.start()
        with socket.create_connection((self.host, self.port), timeout=10):
            pass  # the listening socket is bound already; this proves the loop accepts
        return self

    def stop(self) -> None:
        """End watches, stop serving, wait for request threads and the controllers."""
        self.store.close()
        if self.store.wait_streams_ended(timeout_s=2.0):  # watches end, then connections close
            time.sleep(0.05)  # their last chunk, written right after, reaches the socket
        self._server.stop()
        self._controllers.stop()

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of resource requests seen so far."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        """Forget recorded requests."""
        self._log.clear()

    def inject_faults(
        self,
        rate: float,
        statuses: tuple[int, ...] = (500, 503, 429),
        latency_s: float = 0.0,
        drop: bool = False,
        seed: int = 0,
        match: Callable[[RequestRecord], bool] | None = None,
        trickle_s: float = 0.0,
    ) -> None:
        """Fault a `rate` share of matching resource requests (see faults.py for the semantics)."""
        self._faults.configure(rate, statuses, latency_s, drop, seed, match, trickle_s)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self._faults.clear()

    def issue_token(self, user: str, service_account_namespace: str = "") -> tuple[str, UserInfo]:
        """A fresh token: for ServiceAccount ``user`` in ``service_account_namespace`` when that
        is given, else for an administrator (system:masters) named ``user``."""
        if service_account_namespace:
            info = service_account_user(service_account_namespace, user)
        else:
            info = master_user(user)
        return self.tokens.issue(Credential(user, info)), info

    def _credentials(self, user: str, service_account_namespace: str) -> dict[str, Any]:
        """The kubeconfig's user entry. kubectl drops bearer tokens over plain HTTP but sends
        impersonation headers: so the token also travels as an impersonation extra, and the
        user impersonates itself (see authenticating.py)."""
        if not self.security.enforcing:
            return {"token": user, "as": user}  # nothing is checked: the token is the name
        token, info = self.issue_token(user, service_account_namespace)
        return {"token": token, "as": info.name, "as-user-extra": {TOKEN_EXTRA: [token]}}

    def kubeconfig(
        self, user: str = "admin", namespace: str = "default", service_account_namespace: str = ""
    ) -> dict[str, Any]:
        """A kubeconfig document for `user` (a ServiceAccount of `service_account_namespace` if
        given); without authorization its bearer token is `user` itself."""
        credentials = self._credentials(user, service_account_namespace)
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": credentials}],
            "contexts": [
                {
                    "name": CLUSTER_NAME,
                    "context": {"cluster": CLUSTER_NAME, "user": user, "namespace": namespace},
                }
            ],
            "current-context": CLUSTER_NAME,
            "preferences": {},
        }

    def write_kubeconfig(
        self, path: str | Path, user: str = "admin", service_account_namespace: str = ""
    ) -> Path:
        """Write a kubeconfig for `user` to `path` (parents created, owner-only: it holds a
        token); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        document = self.kubeconfig(user, service_account_namespace=service_account_namespace)
        target.touch(mode=0o600)
        target.write_text(yaml.safe_dump(copy.deepcopy(document), sort_keys=False))
        return target


def start_apiserver(
    host: str = "127.0.0.1", port: int = 0, workloads: bool = True, authorization: bool = False
) -> ApiServer:
    """Create and start an ApiServer (enforcing tokens and RBAC with ``authorization``); it is
    serving when this returns."""
    return ApiServer(host, port, workloads, authorization).start()
