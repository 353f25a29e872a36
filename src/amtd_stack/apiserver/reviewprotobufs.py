"""The review bodies kubectl sends as protobuf, read as JSON-shaped objects (pure).

``kubectl auth can-i`` and ``auth whoami`` post SelfSubjectAccessReview, SelfSubjectRulesReview
and SelfSubjectReview with their typed clients, in protobuf (field numbers from
k8s.io/api authorization/v1 and authentication/v1 generated.proto).
"""

from __future__ import annotations

from typing import Any

from .apierrors import bad_request
from .protobufs import MAGIC, fields, object_meta

# message field number -> JSON name, for the string fields of each spec part
RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource",
                       6: "subresource", 7: "name"}  # fmt: skip
NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}
RULES_SPEC = {1: "namespace"}


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    return {names[n]: v.decode() for n, _, v in fields(data) if n in names}


def _access_spec(data: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for number, _, value in fields(data):
        if number == 1:
            spec["resourceAttributes"] = _strings(value, RESOURCE_ATTRIBUTES)
        elif number == 2:
            spec["nonResourceAttributes"] = _strings(value, NON_RESOURCE_ATTRIBUTES)
    return spec


def decode_review(body: bytes) -> dict[str, Any]:
    """A review object from its protobuf body; 400 if malformed or not a review."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body lacks the k8s magic prefix")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
    type_meta = {n: v.decode() for n, _, v in fields(envelope.get(1, b""))}
    kind = type_meta.get(2, "")
    review: dict[str, Any] = {"apiVersion": type_meta.get(1, ""), "kind": kind, "metadata": {}}
    for number, _, value in fields(envelope.get(2, b"")):
        if number == 1:
            review["metadata"] = object_meta(value)
        elif number == 2 and kind == "SelfSubjectAccessReview":
            review["spec"] = _access_spec(value)
        elif number == 2 and kind == "SelfSubjectRulesReview":
            review["spec"] = _strings(value, RULES_SPEC)
    if kind not in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"):
        raise bad_request(f"expected a SelfSubject*Review, got kind {kind!r}")
    return review
