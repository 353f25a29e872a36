"""The ``pods/{name}/ephemeralcontainers`` subresource, as the real API server judges it (pure).

A write there may only add ephemeral containers: one already in the pod can be neither changed
nor removed. Each new one needs a unique DNS-1123 label name and an image, may not set the fields
an ephemeral container cannot have (ports, probes, resources, lifecycle...), and its
``targetContainerName`` must name one of the pod's containers. The emulated kubelet then shows
each new one running in ``status.ephemeralContainerStatuses``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from amtd.model.objects import Object

from .apierrors import invalid
from .stamping import now_rfc3339

SUBRESOURCE = "ephemeralcontainers"
FIELD = "spec.ephemeralContainers"
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "resources",
             "lifecycle", "resizePolicy", "restartPolicy")  # fmt: skip
Cause = dict[str, str]


def admit_ephemeral_containers(old: Object, new: Object) -> Object:
    """``new`` (the pod as the write leaves it) with the new containers shown running; 422 when
    the write changes or removes an existing one, or adds one the API server would refuse."""
    before = _containers(old, "ephemeralContainers")
    after = _containers(new, "ephemeralContainers")
    causes = _changed_causes(before, after)
    names = {c.get("name") for c in _containers(new, "containers")}
    taken = names | {c.get("name") for c in _containers(new, "initContainers")}
    existing = {c.get("name") for c in before}
    for index, container in enumerate(after):
        if container.get("name") not in existing:
            causes += _container_causes(f"{FIELD}[{index}]", container, taken, names)
            taken.add(container.get("name"))
    if causes:
        raise invalid("Pod", new["metadata"].get("name", ""), "", causes)
    return _with_statuses(new, [c for c in after if c.get("name") not in existing])


def _containers(pod: Object, key: str) -> list[dict[str, Any]]:
    found = (pod.get("spec") or {}).get(key) or []
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "field": field, "message": message}


def _changed_causes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[Cause]:
    kept = {item.get("name"): item for item in after}
    causes = []
    for item in before:
        name = item.get("name")
        if name not in kept:
            message = f'Forbidden: existing ephemeral containers "{name}" may not be removed'
            causes.append(_cause(FIELD, message, "FieldValueForbidden"))
        elif kept[name] != item:
            message = f'Forbidden: existing ephemeral containers "{name}" may not be changed'
            causes.append(_cause(FIELD, message, "FieldValueForbidden"))
    return causes


def _container_causes(
    at: str, container: dict[str, Any], taken: set[Any], targets: set[Any]
) -> list[Cause]:
    name, causes = container.get("name"), []
    if not name:
        causes.append(_cause(f"{at}.name", "Required value", "FieldValueRequired"))
    elif not isinstance(name, str) or len(name) > 63 or not LABEL.match(name):
        causes.append(_cause(f"{at}.name", f"Invalid value: {name!r}: must be a DNS-1123 label"))
    elif name in taken:
        causes.append(_cause(f"{at}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
    if not container.get("image"):
        causes.append(_cause(f"{at}.image", "Required value", "FieldValueRequired"))
    for key in FORBIDDEN:
        if key in container:
            message = "Forbidden: cannot be set for an Ephemeral Container"
            causes.append(_cause(f"{at}.{key}", message, "FieldValueForbidden"))
    target = container.get("targetContainerName")
    if target is not None and target not in targets:
        message = f'Not found: "{target}"'
        causes.append(_cause(f"{at}.targetContainerName", message, "FieldValueNotFound"))
    return causes


def _with_statuses(pod: Object, added: list[dict[str, Any]]) -> Object:
    if not added:
        return pod
    out = copy.deepcopy(pod)
    status = out.setdefault("status", {})
    shown = list(status.get("ephemeralContainerStatuses") or [])
    started = now_rfc3339()
    shown += [
        {"name": item["name"], "image": item.get("image", ""), "imageID": "", "ready": False,
         "restartCount": 0, "state": {"running": {"startedAt": started}}}
        for item in added
    ]  # fmt: skip
    status["ephemeralContainerStatuses"] = shown
    return out
