"""Cluster credentials are re-applied at most once per interval, not before every request.

Against the stand-in, whose identity is the bearer token: a token changed behind the client's
back is sent until the next refresh is due, and the refresh (the kubeconfig loader's own hook)
puts the kubeconfig's token back and leaves the throttle in place.
"""

from __future__ import annotations

import math
from pathlib import Path

from amtd.kube.api import Cluster, Resource
from amtd.kube.credentials import ThrottledRefresh
from amtd_stack.apiserver import ApiServer

NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)


def test_credentials_are_refreshed_once_per_interval(apiserver: ApiServer, kubeconfig: Path):
    cluster = Cluster.connect(str(kubeconfig))
    configuration = cluster.api_client.configuration
    throttle = configuration.refresh_api_key_hook
    assert isinstance(throttle, ThrottledRefresh)
    throttle.interval_s = 3600.0  # no test is slow enough to reach it
    cluster.get(NAMESPACES, "default")  # refreshed: the interval starts
    configuration.api_key["BearerToken"] = "Bearer intruder"

    cluster.get(NAMESPACES, "default")  # within the interval: not refreshed
    throttle.refreshed_at = -math.inf  # as if the interval had passed
    cluster.get(NAMESPACES, "default")

    assert [record.user for record in apiserver.requests] == ["test", "intruder", "test"]
    assert configuration.refresh_api_key_hook is throttle
    cluster.api_client.close()
