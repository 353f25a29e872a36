"""Server-side printing: the `Table` form kubectl asks for (pure apart from the clock).

Custom resources use their CRD's additionalPrinterColumns through a small JSONPath subset
(`.a.b`, `[*]`, `[n]`, `['key']`); built-ins get Name/Age plus the usual columns of a few kinds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from amtd.model.objects import Object

from .resources import PrinterColumn, ResourceType

Cell = Callable[[Object], Any]
TABLE_ACCEPT_MARK = "as=Table"
_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[\*\]|\[(\d+)\]|\['([^']*)'\]|\.\*")
NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def evaluate_jsonpath(obj: Any, path: str) -> list[Any]:
    """All values a simple JSONPath selects (missing fields select nothing)."""
    path = path.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    nodes = [obj]
    for found in _TOKEN.finditer(path):
        field, index, quoted = found.groups()
        key = field if field is not None else quoted
        nodes = [n for node in nodes for n in _step(node, key, index, found.group(0))]
    return nodes


def _step(node: Any, key: str | None, index: str | None, token: str) -> list[Any]:
    if key is not None:
        return [node[key]] if isinstance(node, Mapping) and key in node else []
    if index is not None:
        i = int(index)
        return [node[i]] if isinstance(node, list) and i < len(node) else []
    if token in ("[*]", ".*"):
        return list(node.values()) if isinstance(node, Mapping) else list(node or [])
    return []


def go_format(value: Any) -> str:
    """Print a value roughly as kubectl's JSONPath printer does (maps as map[k:v])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    return str(value) if not isinstance(value, float) else json.dumps(value)


def human_duration(seconds: float) -> str:
    """Kubernetes' short age format: 45s, 3m20s, 15m, 5h2m, 3d4h, 1y20d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 120:
        return f"{max(s, 0)}s"
    m, h, d = s // 60, s // 3600, s // 86400
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 365 * 8 and d % 365 else f"{d // 365}y"


def age(timestamp: Any) -> str:
    """How long ago an RFC 3339 timestamp was, in the short format; <unknown> if unparsable."""
    try:
        then = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _custom_cell(column: PrinterColumn, obj: Object) -> Any:
    values = evaluate_jsonpath(obj, column.json_path)
    if not values:
        return None
    if column.type == "string":
        return " ".join(go_format(v) for v in values)
    if column.type == "date":
        return age(values[0])
    return values[0]


def _meta(obj: Object, key: str) -> Any:
    return obj.get("metadata", {}).get(key)


def _pod_status(obj: Object) -> str:
    if _meta(obj, "deletionTimestamp"):
        return "Terminating"
    return str((obj.get("status") or {}).get("phase") or "Pending")


def _pod_ready(obj: Object) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    return f"{ready}/{len((obj.get('spec') or {}).get('containers') or [])}"


def _restarts(obj: Object) -> int:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return sum(int(c.get("restartCount") or 0) for c in statuses)


def _field(*path: str, default: Any = 0) -> Cell:
    def cell(obj: Object) -> Any:
        node: Any = obj
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        return default if node is None else node

    return cell


def _ready_of(obj: Object) -> str:
    status = obj.get("status") or {}
    desired = (obj.get("spec") or {}).get("replicas", 1)
    return f"{status.get('readyReplicas') or 0}/{desired}"


def _event_object(obj: Object) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _external_ip(obj: Object) -> str:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName", "<none>"))
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    found = [i.get("ip") or i.get("hostname") for i in ingress]
    external = [*(spec.get("externalIPs") or []), *(f for f in found if f)]
    return ",".join(external) or ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")


def _service_ports(obj: Object) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    shown = [
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}"
        f"/{p.get('protocol', 'TCP')}"
        for p in ports
    ]
    return ",".join(shown) or "<none>"


def _job_status(obj: Object) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    for kind in ("Complete", "Failed"):
        if conditions.get(kind) == "True":
            return kind
    return "Suspended" if spec.get("suspend") else "Running"


def _job_completions(obj: Object) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    completions = spec.get("completions")
    return f"{status.get('succeeded') or 0}/{completions if completions is not None else 1}"


def _node_selector(obj: Object) -> str:
    template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    pairs = sorted((template.get("nodeSelector") or {}).items())
    return ",".join(f"{k}={v}" for k, v in pairs) or "<none>"


def _node_status(obj: Object) -> str:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    shown = "Ready" if ready else "NotReady"
    return f"{shown},SchedulingDisabled" if (obj.get("spec") or {}).get("unschedulable") else shown


_AGE: tuple[str, str, Cell] = ("Age", "string", lambda o: age(_meta(o, "creationTimestamp")))
BUILTIN_COLUMNS: Mapping[str, list[tuple[str, str, Cell]]] = {
    "Pod": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        ("Restarts", "integer", _restarts),
        _AGE,
        ("IP", "string", _field("status", "podIP", default="<none>")),
        ("Node", "string", _field("spec", "nodeName", default="<none>")),
    ],
    "Namespace": [("Status", "string", _field("status", "phase", default="")), _AGE],
    "Deployment": [
        ("Ready", "string", _ready_of),
        ("Up-to-date", "integer", _field("status", "updatedReplicas")),
        ("Available", "integer", _field("status", "availableReplicas")),
        _AGE,
    ],
    "ReplicaSet": [
        ("Desired", "integer", _field("spec", "replicas", default=1)),
        ("Current", "integer", _field("status", "replicas")),
        ("Ready", "integer", _field("status", "readyReplicas")),
        _AGE,
    ],
    "Event": [
        ("Last Seen", "string", lambda o: age(o.get("lastTimestamp") or o.get("eventTime"))),
        ("Type", "string", _field("type", default="")),
        ("Reason", "string", _field("reason", default="")),
        ("Object", "string", _event_object),
        ("Message", "string", _field("message", default="")),
    ],
    "CustomResourceDefinition": [
        ("Created At", "date", lambda o: _meta(o, "creationTimestamp")),
    ],
    "Service": [
        ("Type", "string", _field("spec", "type", default="ClusterIP")),
        ("Cluster-IP", "string", _field("spec", "clusterIP", default="<none>")),
        ("External-IP", "string", _external_ip),
        ("Port(s)", "string", _service_ports),
        _AGE,
    ],
    "Job": [
        ("Status", "string", _job_status),
        ("Completions", "string", _job_completions),
        ("Duration", "string", lambda o: age((o.get("status") or {}).get("startTime"))),
        _AGE,
    ],
    "DaemonSet": [
        ("Desired", "integer", _field("status", "desiredNumberScheduled")),
        ("Current", "integer", _field("status", "currentNumberScheduled")),
        ("Ready", "integer", _field("status", "numberReady")),
        ("Up-to-date", "integer", _field("status", "updatedNumberScheduled")),
        ("Available", "integer", _field("status", "numberAvailable")),
        ("Node Selector", "string", _node_selector),
        _AGE,
    ],
    "Node": [
        ("Status", "string", _node_status),
        ("Roles", "string", lambda _o: "<none>"),
        _AGE,
        ("Version", "string", _field("status", "nodeInfo", "kubeletVersion", default="")),
    ],
}
_WIDE_ONLY = {"IP", "Node"}


def _columns(rtype: ResourceType) -> list[tuple[Object, Cell]]:
    if rtype.is_custom:
        return [
            (
                {
                    "name": c.name,
                    "type": c.type,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                },
                lambda o, c=c: _custom_cell(c, o),  # type: ignore[misc]
            )
            for c in rtype.printer_columns
        ]
    specs = BUILTIN_COLUMNS.get(rtype.kind, [_AGE])
    return [
        (
            {
                "name": n,
                "type": t,
                "format": "",
                "description": n,
                "priority": 1 if n in _WIDE_ONLY else 0,
            },
            cell,
        )
        for n, t, cell in specs
    ]


def _row_object(obj: Object, include: str) -> Object | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    rtype: ResourceType,
    objects: list[Object],
    resource_version: str,
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Object:
    """A meta.k8s.io/v1 Table for objects of one type."""
    columns = _columns(rtype)
    rows = []
    for obj in objects:
        row: Object = {"cells": [_meta(obj, "name"), *(cell(obj) for _, cell in columns)]}
        if (partial := _row_object(obj, include_object)) is not None:
            row["object"] = partial
        rows.append(row)
    table: Object = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [NAME_COLUMN, *(c for c, _ in columns)] if with_columns else [],
        "rows": rows,
    }
    return table


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for the Table form."""
    return TABLE_ACCEPT_MARK in accept.replace(" ", "")
