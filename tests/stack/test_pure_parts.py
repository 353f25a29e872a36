"""Pure parts of the stand-in: patches, schema conversion, JSONPath, ages, protobuf decoding."""

from __future__ import annotations

import copy

import pytest

from amtd_stack.apiserver.apierrors import ApiError
from amtd_stack.apiserver.patching import apply_json_patch, merge_patch
from amtd_stack.apiserver.protobufs import MAGIC, decode_object
from amtd_stack.apiserver.tables import evaluate_jsonpath, go_format, human_duration
from amtd_stack.schemas import prune, to_json_schema, validation_causes


def test_strategic_merge_merges_named_lists_and_drops_directives() -> None:
    target = {
        "containers": [{"name": "a", "image": "1", "ports": [1]}, {"name": "b", "image": "1"}]
    }
    patch = {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"}],
    }
    assert merge_patch(target, patch, strategic=True) == {
        "containers": [{"name": "a", "image": "2", "ports": [1]}]
    }
    assert merge_patch(target, patch)["containers"][1] == {"name": "b", "$patch": "delete"}


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "move", "from": "/c", "path": "/d"},
        {"op": "copy", "from": "/d", "path": "/e~1f"},
        {"op": "remove", "path": "/a/b/0"},
        {"op": "test", "path": "/d", "value": "x"},
    ]
    assert apply_json_patch(doc, ops) == {"a": {"b": [2, 3]}, "d": "x", "e/f": "x"}
    with pytest.raises(ApiError) as caught:
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert caught.value.code == 422


def test_schema_conversion_handles_nullable_and_int_or_string() -> None:
    schema = {
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "note": {"type": "string", "nullable": True, "enum": ["a"]},
        },
    }
    converted = to_json_schema(schema)
    assert converted["properties"]["port"] == {"type": ["integer", "string"]}
    assert converted["properties"]["note"] == {"type": ["string", "null"], "enum": ["a", None]}
    assert validation_causes({"port": "80", "note": None}, schema) == []
    assert [c["field"] for c in validation_causes({"port": 1.5}, schema)] == ["port"]


def test_prune_keeps_preserved_fields_fills_defaults_and_drops_nulls() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "mode": {"type": "string", "default": "on"},
                    "gone": {"type": "string"},
                },
            }
        },
    }
    obj = {
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {"free": {"k": 1}, "gone": None, "junk": 1},
    }
    assert prune(obj, schema, is_root=True) == {
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {"free": {"k": 1}, "mode": "on"},
    }


def test_jsonpath_and_formatting() -> None:
    obj = {"spec": {"targets": ["a/b", "c/d"], "rule": {"type": "t"}, "sel": {"x": "1"}}}
    assert evaluate_jsonpath(obj, ".spec.targets[*]") == ["a/b", "c/d"]
    assert evaluate_jsonpath(obj, "{.spec.targets[1]}") == ["c/d"]
    assert evaluate_jsonpath(obj, ".spec.rule['type']") == ["t"]
    assert evaluate_jsonpath(obj, ".status.phase") == []
    assert go_format(obj["spec"]["sel"]) == "map[x:1]"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (4 * 3600 + 60, "4h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
        (-5, "<invalid>"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_protobuf_namespace_decodes_metadata() -> None:
    type_meta = _field(1, b"v1") + _field(2, b"Namespace")
    labels = _field(11, _field(1, b"team") + _field(2, b"red"))
    meta = _field(1, b"demo") + labels
    body = MAGIC + _field(1, type_meta) + _field(2, _field(1, meta))
    assert decode_object(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "demo", "labels": {"team": "red"}},
    }
    with pytest.raises(ApiError) as caught:
        decode_object(MAGIC + b"\x0a\xff")
    assert caught.value.code == 400


@pytest.mark.parametrize(
    ("schema", "value", "wording"),
    [
        ({"pattern": "^(a|b)$"}, "c", "x in body should match '^(a|b)$'"),
        ({"maxProperties": 1}, {"a": 1, "b": 2}, "x in body should have at most 1 properties"),
        ({"minimum": 0}, -1, "x in body should be greater than or equal to 0"),
        ({"type": "integer"}, "1", 'x in body must be of type integer: "string"'),
        ({"anyOf": [{"required": ["a"]}]}, {}, "x in body must validate at least one schema"),
    ],
)
def test_validation_messages_are_worded_as_the_real_server_words_them(
    schema: dict[str, object], value: object, wording: str
) -> None:
    (cause,) = validation_causes({"x": value}, {"type": "object", "properties": {"x": schema}})
    assert wording in cause["message"]


def test_a_pattern_python_cannot_compile_falls_back_to_the_full_validator() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "(?<n>a)"}}}
    assert [c["field"] for c in validation_causes({"x": 5}, schema)] == ["x"]


def test_a_shared_patch_copies_only_what_it_changes_and_never_the_target() -> None:
    from amtd_stack.apiserver.patching import JSON_PATCH, MERGE, apply_patch

    target = {"metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {"big": [1, 2]},
              "status": {"items": [{"x": 1}], "other": {"y": 2}}}  # fmt: skip
    before = copy.deepcopy(target)
    ops = [{"op": "add", "path": "/status/items/-", "value": {"x": 2}}]
    for patch, kind in ((ops, JSON_PATCH), ({"status": {"other": {"y": 3}}}, MERGE)):
        result = apply_patch(target, patch, kind, shared=True)
        assert target == before  # the stored object is never changed
        assert result["spec"] is target["spec"]  # what no change reaches is shared
        assert result["metadata"] == target["metadata"]
        assert result["metadata"] is not target["metadata"]  # writes stamp it: always a copy
    assert apply_patch(target, ops, JSON_PATCH, shared=True)["status"]["items"][0] is (
        target["status"]["items"][0])  # fmt: skip
    assert apply_patch(target, ops, JSON_PATCH)["spec"] is not target["spec"]


def test_pruning_keeps_the_parts_shared_with_the_stored_object() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "x": {"type": "integer"}}}}}}}}  # fmt: skip
    stored = {"spec": {"items": [{"x": 1}]}}
    new = {"spec": {"items": [stored["spec"]["items"][0], {"x": 2, "junk": 1}]}}
    pruned = prune(new, schema, is_root=True, stored=stored)
    assert pruned == {"spec": {"items": [{"x": 1}, {"x": 2}]}}
    assert pruned["spec"]["items"][0] is stored["spec"]["items"][0]
