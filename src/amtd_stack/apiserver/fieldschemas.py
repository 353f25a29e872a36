"""The fields of built-in kinds, read from the official client's models (pure once loaded).

Each model class of the `kubernetes` package (V1Pod, V1PodSpec, ...) lists its fields in
`attribute_map` (python name -> JSON name) and their types in `openapi_types` ("V1PodSpec",
"List[V1Container]", "Dict[str, str]", "str", "object" for free-form values such as
IntOrString). That is the schema a real server decodes built-ins with: a field outside it is
unknown, and is dropped (reported or refused, as fieldValidation says).
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

from amtd.model.objects import Object

_LIST = re.compile(r"^List\[(.+)\]$")
_DICT = re.compile(r"^Dict\[str, (.+)\]$")
# Built-in kinds whose model class is not "V1<Kind>".
_MODEL_NAMES = {("", "Event"): "CoreV1Event"}


@functools.cache
def _models() -> Any:
    return importlib.import_module("kubernetes.client")  # heavy: loaded on first use only


@functools.cache
def _fields(model_name: str) -> dict[str, str] | None:
    """JSON field name -> type string of one model, or None when there is no such model."""
    model = getattr(_models(), model_name, None)
    if model is None or not hasattr(model, "openapi_types"):
        return None
    types: dict[str, str] = model.openapi_types
    return {json_name: types[name] for name, json_name in model.attribute_map.items()}


def model_name(group: str, kind: str) -> str:
    """The client model class that describes a built-in kind."""
    return _MODEL_NAMES.get((group, kind), f"V1{kind}")


def _drop_in(value: Any, type_name: str, path: str, found: list[str]) -> None:
    """Drop unknown fields below `value` (of `type_name`), noting their paths in `found`."""
    if listed := _LIST.match(type_name):
        for index, item in enumerate(value if isinstance(value, list) else []):
            _drop_in(item, listed.group(1), f"{path}[{index}]", found)
    elif mapped := _DICT.match(type_name):
        for key, item in (value if isinstance(value, dict) else {}).items():
            _drop_in(item, mapped.group(1), f"{path}.{key}", found)
    elif isinstance(value, dict) and (fields := _fields(type_name)) is not None:
        for key in list(value):
            child = f"{path}.{key}" if path else key
            if key not in fields:
                found.append(child)
                del value[key]
            else:
                _drop_in(value[key], fields[key], child, found)


def drop_unknown_fields(group: str, kind: str, obj: Object) -> list[str]:
    """Remove (in place) every field the kind's schema lacks; returns their paths, such as
    `spec.containers[0].foo`. Kinds without a model are left alone."""
    found: list[str] = []
    _drop_in(obj, model_name(group, kind), "", found)
    return found
