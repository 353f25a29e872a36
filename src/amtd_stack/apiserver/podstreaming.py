"""pods/log, pods/exec, pods/attach and pods/portforward: the embedded stack runs no containers.

A real API server proxies these to the kubelet; the stand-in has none, so it answers as the real
server does when a container cannot stream (a 400 BadRequest `Status`, which kubectl prints as
is), after the same 404 a missing pod gets. `is_pod_stream` is pure.
"""

from __future__ import annotations

from typing import NoReturn

from .apierrors import ApiError
from .handling import Api, Target
from .routing import ResourcePath

# Subresource -> what the client wanted, for the message.
STREAMS = {
    "log": "has no logs to read",
    "exec": "has no container to exec into",
    "attach": "has no container to attach to",
    "portforward": "has no container ports to forward",
}


def is_pod_stream(route: ResourcePath) -> bool:
    """Whether a path addresses one pod's log, exec, attach or portforward subresource."""
    named = bool(route.namespace and route.name)
    return named and route.group == "" and route.plural == "pods" and route.subresource in STREAMS


def refuse_stream(api: Api, route: ResourcePath) -> NoReturn:
    """404 for a missing pod, else 400 saying no container runs here."""
    rtype = api.registry.lookup("", route.version, "pods")
    if rtype is None:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    api.get(Target(rtype, route.namespace, route.name))
    raise ApiError(
        400,
        f'the embedded amtd stack runs no containers: pod "{route.namespace}/{route.name}" '
        f"{STREAMS[route.subresource]} (pods/{route.subresource} needs a real cluster)",
        "BadRequest",
    )
