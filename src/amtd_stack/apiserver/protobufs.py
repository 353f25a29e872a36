"""Just enough Kubernetes protobuf to read what kubectl's typed generators send (pure).

`kubectl create namespace|serviceaccount|configmap|secret|deployment|service|role|...` POST
protobuf bodies: the `k8s\\0` magic, a runtime.Unknown envelope (typeMeta, raw), and the object
message, decoded field by field from the numbers in protoschemas.py. Other kinds, and messages
not listed there, are refused with 415 naming them (kubectl does not retry in JSON: use a
manifest with `kubectl create -f` or `kubectl apply -f` instead).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from typing import Any

from .apierrors import ApiError, bad_request
from .protoschemas import KIND_MESSAGES, MESSAGES

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


# Pointer fields whose zero is a value (`kubectl create deployment --replicas=0`); for every
# other field upstream's encoder writes zeros and empty messages for unset ones, so they are
# dropped, as decoding them into Go structs and encoding JSON (omitempty) drops them.
_KEEP_ZERO = frozenset(
    {
        ("DeploymentSpec", "replicas"),
        ("JobSpec", "parallelism"),
        ("JobSpec", "completions"),
        ("JobSpec", "backoffLimit"),
    }
)
_SKIPPED = frozenset({"Time"})  # timestamps are the server's to set


@functools.cache
def _schema(message: str) -> dict[int, tuple[str, str, str]]:
    """field number -> (JSON name, shape "" | "*" repeated | "%" map, type) of one message."""
    parsed = {}
    for entry in MESSAGES[message].split():
        number, name, *typed = entry.split(":")
        shape = name[0] if name[0] in "*%" else ""
        parsed[int(number)] = (name.lstrip("*%"), shape, typed[0] if typed else "")
    return parsed


def _scalar(type_name: str, value: int | bytes) -> Any:
    if type_name in ("int", "bool"):
        if not isinstance(value, int):
            raise bad_request(f"protobuf {type_name} field is not a varint")
        number = value - (1 << 64) if value >= 1 << 63 else value
        return bool(number) if type_name == "bool" else number
    if not isinstance(value, bytes):
        raise bad_request("protobuf string or bytes field is not length-delimited")
    if type_name == "bytes":
        return _b64(value)
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise bad_request("protobuf string field is not UTF-8") from None


def _value(type_name: str, value: int | bytes, path: str) -> Any:
    """One field's JSON value; None for what is not kept; 415 for a message not decoded."""
    if type_name in ("", "int", "bool", "bytes"):
        return _scalar(type_name, value)
    if not isinstance(value, bytes):
        raise bad_request(f"protobuf message field {path} is not length-delimited")
    if type_name == "Quantity":
        return decode_message("Quantity", value, path).get("string", "")
    if type_name == "IntOrString":
        parts = decode_message("IntOrString", value, path)
        return parts.get("strVal", "") if parts.get("type") == 1 else parts.get("intVal", 0)
    if type_name in _SKIPPED or (type_name not in MESSAGES and not value):
        return None
    if type_name not in MESSAGES:
        raise ApiError(
            415,
            f"the protobuf field {path} ({type_name}) is not understood by this API server "
            "stand-in; send JSON (e.g. kubectl create -f with a manifest)",
            "UnsupportedMediaType",
        )
    return decode_message(type_name, value, path)


def _is_kept(message: str, name: str, value: Any) -> bool:
    zero = value is None or value is False or value in ("", 0, {})
    return not zero or ((message, name) in _KEEP_ZERO and value is not None)


def decode_message(message: str, data: bytes, path: str = "") -> dict[str, Any]:
    """A JSON-shaped dict of one listed message (field numbers not listed are skipped)."""
    out: dict[str, Any] = {}
    for number, _, raw in fields(data):
        if (spec := _schema(message).get(number)) is None:
            continue
        name, shape, type_name = spec
        child = f"{path}.{name}" if path else name
        if shape == "%":
            entry = {n: v for n, _, v in fields(raw if isinstance(raw, bytes) else b"")}
            key = _scalar("", entry.get(1, b""))
            out.setdefault(name, {})[key] = _value(type_name, entry.get(2, b""), f"{child}.{key}")
        elif shape == "*":
            out.setdefault(name, []).append(
                _value(type_name, raw, f"{child}[{len(out.get(name, []))}]")
            )
        elif _is_kept(message, name, item := _value(type_name, raw, child)):
            out[name] = item
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A JSON-shaped object from a protobuf body; 400 if malformed, 415 for kinds (or fields)
    not decoded here."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body lacks the k8s magic prefix")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
    type_meta = {n: v.decode() for n, _, v in fields(envelope.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    message = KIND_MESSAGES.get((api_version, kind))
    if message is None:
        raise ApiError(
            415,
            f"protobuf bodies are not understood for kind {kind!r}; send JSON",
            "UnsupportedMediaType",
        )
    decoded = decode_message(message, envelope.get(2, b""))
    return {"apiVersion": api_version, "kind": kind, "metadata": {}, **decoded}
