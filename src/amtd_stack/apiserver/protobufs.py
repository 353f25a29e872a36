"""Just enough Kubernetes protobuf to read what kubectl's typed generators send (pure).

`kubectl create namespace|serviceaccount|configmap|secret` POST protobuf bodies: the `k8s\\0`
magic, a runtime.Unknown envelope (typeMeta, raw), and the object message. Only object metadata
(name, generateName, namespace, labels, annotations) and the ConfigMap/Secret data fields are
decoded; other kinds are refused with 415 so the client can send JSON instead.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from .apierrors import ApiError, bad_request

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"
Fields = Iterator[tuple[int, int, Any]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise bad_request("truncated protobuf body")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def fields(data: bytes) -> Fields:
    """(field number, wire type, value) triples of one message; bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = data[pos : pos + width], pos + width
        else:
            raise bad_request(f"unsupported protobuf wire type {wire}")
        if pos > len(data):
            raise bad_request("truncated protobuf body")
        yield number, wire, value


def _map_entry(entry: bytes, decode: Callable[[bytes], Any]) -> tuple[str, Any]:
    parts = {n: v for n, _, v in fields(entry)}
    return parts.get(1, b"").decode(), decode(parts.get(2, b""))


def _text(raw: bytes) -> str:
    return raw.decode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


_META_TEXT = {1: "name", 2: "generateName", 3: "namespace"}
_META_MAPS = {11: "labels", 12: "annotations"}


def object_meta(data: bytes) -> dict[str, Any]:
    """The ObjectMeta fields a create needs."""
    meta: dict[str, Any] = {}
    for number, _, value in fields(data):
        if number in _META_TEXT:
            meta[_META_TEXT[number]] = value.decode()
        elif number in _META_MAPS:
            key, item = _map_entry(value, _text)
            meta.setdefault(_META_MAPS[number], {})[key] = item
    return meta


# kind -> {field number: (JSON name, value decoder)} for map<string, ...> fields
_DATA_MAPS: dict[str, dict[int, tuple[str, Callable[[bytes], Any]]]] = {
    "Namespace": {},
    "ServiceAccount": {},
    "ConfigMap": {2: ("data", _text), 3: ("binaryData", _b64)},
    "Secret": {2: ("data", _b64), 4: ("stringData", _text)},
}
_SECRET_TYPE = 3


def decode_object(body: bytes) -> dict[str, Any]:
    """A JSON-shaped object from a protobuf body; 400 if malformed, 415 for unsupported kinds."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body lacks the k8s magic prefix")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
    type_meta = {n: v.decode() for n, _, v in fields(envelope.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    if kind not in _DATA_MAPS:
        raise ApiError(
            415,
            f"protobuf bodies are not understood for kind {kind!r}; send JSON",
            "UnsupportedMediaType",
        )
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    for number, _, value in fields(envelope.get(2, b"")):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number in _DATA_MAPS[kind]:
            name, decode = _DATA_MAPS[kind][number]
            key, item = _map_entry(value, decode)
            obj.setdefault(name, {})[key] = item
        elif kind == "Secret" and number == _SECRET_TYPE:
            obj["type"] = value.decode()
    return obj
