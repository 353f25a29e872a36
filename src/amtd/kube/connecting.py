"""Connecting: the shared API server connection every cluster-writing function starts from.

Here rather than with one of its users: ingest, the timer and the sweeper all connect the same
way, and a client that cannot be configured must be a retried 503 for each of them.
"""

from __future__ import annotations

from amtd.kube.api import Cluster, shared_cluster
from amtd.kube.apierrors import TransientError


def connect_cluster() -> Cluster:
    """The shared connection; a client that cannot be configured is a (retried) 503."""
    try:
        return shared_cluster()
    except Exception as error:  # config errors of any kind: the server side is not ready
        raise TransientError(0, "NotConfigured", f"no Kubernetes client: {error}") from None
