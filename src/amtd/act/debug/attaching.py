"""Attaching: the ephemeral container a ``debugger`` or ``customAction`` step adds. Pure.

The container's name is derived from the step id (the policy's name, or ``amtd-debugger``, cut
to fit, plus 10 hex digits of the step id's SHA-256), so a redelivered step finds its own
container and adds nothing, and two SecurityEvents never ask for the same name: the API server
never lets an ephemeral container be changed or removed once added.

- ``debugger`` (Phoenix's shape): ``image``, ``terminal`` (stdin and tty), aimed at the pod's
  first container (``targetContainerName``) so it shares that container's process namespace,
  as ``kubectl debug --target`` does.
- ``customAction``: the policy's EphemeralContainer spec as written, every field kept
  (command, args, env, securityContext, targetContainerName...), only ``name`` replaced; the API
  server judges the rest (a spec it refuses is recorded Failed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from amtd.model.actionevents import ActionStep

MAX_NAME_LENGTH = 63  # a container name is a DNS-1123 label
DIGEST_LENGTH = 10
DEFAULT_STEM = "amtd-debugger"
EphemeralContainer = dict[str, Any]


def make_container_name(stem: str, step_id: str) -> str:
    """``<stem>-<10 hex of sha256(step id)>``, at most 63 characters."""
    digest = hashlib.sha256(step_id.encode()).hexdigest()[:DIGEST_LENGTH]
    room = MAX_NAME_LENGTH - DIGEST_LENGTH - 1
    return f"{stem[:room].rstrip('-') or DEFAULT_STEM}-{digest}"


def build_container(step: ActionStep, pod: Mapping[str, Any]) -> EphemeralContainer:
    """The EphemeralContainer the step adds to ``pod``."""
    parameters = dict(step.parameters)
    stem = str(parameters.pop("name", None) or DEFAULT_STEM)
    name = make_container_name(stem, step.step_id)
    if step.action == "customAction":
        return {**parameters, "name": name}
    container: EphemeralContainer = {"name": name, "image": parameters.get("image")}
    if parameters.get("terminal"):
        container.update(stdin=True, tty=True)
    target = first_container_name(pod)
    if target:
        container["targetContainerName"] = target
    return container


def first_container_name(pod: Mapping[str, Any]) -> str:
    """The name of the pod's first container ("" when it has none we can read)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    name = first.get("name")
    return name if isinstance(name, str) else ""


def find_container(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The pod's ephemeral container of that name, if it has one."""
    found = (pod.get("spec") or {}).get("ephemeralContainers") or []
    return next((c for c in found if isinstance(c, dict) and c.get("name") == name), None)


def is_same_container(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether ``found`` is ``wanted`` as the API server stores it (which adds defaults such as
    ``terminationMessagePath``, so only the fields we set are compared)."""
    return all(found.get(key) == value for key, value in wanted.items())


def build_attach_patch(pod: Mapping[str, Any], container: EphemeralContainer) -> dict[str, Any]:
    """Strategic merge patch adding the container (merged by name), conditional on the pod's
    resourceVersion: a pod changed since it was read answers 409 and the step reads it again."""
    version = pod["metadata"].get("resourceVersion")
    return {
        "metadata": {"resourceVersion": version},
        "spec": {"ephemeralContainers": [container]},
    }


def describe_attach(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """What attaching the container does (also the dry-run message)."""
    meta = pod["metadata"]
    return (f"attach ephemeral container {container['name']} (image {container.get('image')}) "
            f"to pod {meta['namespace']}/{meta['name']} (uid {meta.get('uid')})")  # fmt: skip


def find_privilege(container: Mapping[str, Any]) -> str:
    """What in the container's securityContext grants more than the pod had ("" for nothing).

    Whoever may write an AdaptiveMovingTargetDefense in a namespace would otherwise get a
    privileged container into any pod there through the executor's rights, so a privileged
    container or added capabilities need the executor's opt-in (``AMTD_DEBUG_ALLOW_PRIVILEGED``).
    """
    context = container.get("securityContext")
    if not isinstance(context, dict):
        return ""
    if context.get("privileged"):
        return "securityContext.privileged"
    capabilities = context.get("capabilities")
    added = capabilities.get("add") if isinstance(capabilities, dict) else None
    return f"securityContext.capabilities.add {added}" if added else ""


def is_privilege_allowed(env: Mapping[str, str]) -> bool:
    """Whether the executor was configured to attach privileged containers."""
    return env.get("AMTD_DEBUG_ALLOW_PRIVILEGED", "").strip().lower() == "true"
