"""Fuzzing every entry point (ingest-falco, ingest-kubearmor, timer) in-process.

Random bytes, random JSON and mutated real alerts, in every framing (plain JSON, NDJSON, binary
and structured CloudEvents): the answer is never a 5xx, never a crash, and a 2xx to a CloudEvent
never carries a body. Valid mutants reach the API server stand-in (one per module) for real.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amtd.schedule.timing import ENABLED_ANNOTATION, SCHEDULE_ANNOTATION, check_pod
from support.builders import FALCO_ALERT, KUBEARMOR_ALERT
from support.cloudevents import as_binary, as_structured
from support.functions import load_function_client
from support.ingesting import FALCO_CE_HEADERS, TOKEN, bearer, expect_token
from support.standins import run_module_world

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACCEPTABLE = {200, 201, 202, 204, 400, 401, 405, 413, 415}
CONTENT_TYPES = ["application/json", "application/x-ndjson", "application/cloudevents+json",
                 "text/plain", "application/json; charset=utf-8", ""]  # fmt: skip
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def functions() -> Iterator[dict[str, FlaskClient]]:
    """One stand-in for the module; the three functions connected to it with a token set."""
    with run_module_world("fuzz") as (_, _, monkeypatch):
        expect_token(monkeypatch)
        yield {name: load_function_client(name)
               for name in ("ingest-falco", "ingest-kubearmor", "timer")}  # fmt: skip


@st.composite
def mutants(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The alert with 1-3 fields (top level or in output_fields) removed or replaced."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        nested = document.get("output_fields")
        target = nested if isinstance(nested, dict) and draw(st.booleans()) else document
        key = draw(st.sampled_from([*sorted(target), "extra"]))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values | st.text(max_size=300))
    return document


def check_answer(response: Any, is_cloudevent: bool) -> None:
    """Never 5xx; 2xx answers to CloudEvents have no body; errors are JSON naming a problem."""
    assert response.status_code in ACCEPTABLE, response.get_data(as_text=True)[:500]
    if is_cloudevent and response.status_code < 300:
        assert response.get_data() == b""
    if response.status_code >= 400:
        body = response.get_json()
        assert body["error"] and isinstance(body["detail"], str)


@pytest.mark.parametrize("name", ["ingest-falco", "ingest-kubearmor", "timer"])
@FUZZ
@given(body=st.binary(max_size=300), content_type=st.sampled_from(CONTENT_TYPES))
def test_random_bytes(
    functions: dict[str, FlaskClient], name: str, body: bytes, content_type: str
) -> None:
    response = functions[name].post("/", data=body, content_type=content_type, headers=bearer())
    check_answer(response, content_type.startswith("application/cloudevents"))


@pytest.mark.parametrize("name", ["ingest-falco", "ingest-kubearmor"])
@FUZZ
@given(document=json_values, content_type=st.sampled_from(CONTENT_TYPES))
def test_random_json(
    functions: dict[str, FlaskClient], name: str, document: Any, content_type: str
) -> None:
    response = functions[name].post(
        "/", data=json.dumps(document), content_type=content_type, headers=bearer()
    )
    check_answer(response, content_type.startswith("application/cloudevents"))


@FUZZ
@given(document=mutants(FALCO_ALERT), mode=st.sampled_from(["plain", "binary", "structured"]))
def test_mutated_falco_alerts(
    functions: dict[str, FlaskClient], document: dict[str, Any], mode: str
) -> None:
    attributes = {"type": "falco.rule.output.v1", "source": "https://falco.org", "id": "f",
                  "datacontenttype": "application/json", "amtdtoken": TOKEN}  # fmt: skip
    if mode == "plain":
        headers, body = {**bearer(), "Content-Type": "application/json"}, json.dumps(document)
    else:
        encode = as_binary if mode == "binary" else as_structured
        headers, data = encode(attributes, document)
        body = data.decode("utf-8")
    check_answer(functions["ingest-falco"].post("/", data=body, headers=headers), mode != "plain")


@FUZZ
@given(headers=st.dictionaries(st.sampled_from(sorted(FALCO_CE_HEADERS)), HEADER_TEXT))
def test_mutated_falco_cloudevent_headers(
    functions: dict[str, FlaskClient], headers: dict[str, str]
) -> None:
    merged = {**FALCO_CE_HEADERS, **headers, **bearer()}
    response = functions["ingest-falco"].post("/", data=json.dumps(FALCO_ALERT), headers=merged)
    check_answer(response, True)


@FUZZ
@given(
    items=st.lists(mutants(KUBEARMOR_ALERT) | json_values, min_size=1, max_size=5),
    framing=st.sampled_from(["array", "ndjson", "log", "single"]),
)
def test_mutated_kubearmor_batches(
    functions: dict[str, FlaskClient], items: list[Any], framing: str
) -> None:
    if framing == "array":
        body, content_type = json.dumps(items), "application/json"
    elif framing == "ndjson":
        body, content_type = "\n".join(json.dumps(item) for item in items), "application/x-ndjson"
    elif framing == "log":
        body = json.dumps([{"log": json.dumps(item)} for item in items])
        content_type = "application/json"
    else:
        body, content_type = json.dumps(items[0]), "application/json"
    response = functions["ingest-kubearmor"].post(
        "/", data=body, content_type=content_type, headers=bearer()
    )
    check_answer(response, False)


@FUZZ
@given(attributes=st.dictionaries(st.sampled_from(["type", "source", "id", "specversion",
                                                   "datacontenttype", "subject"]), HEADER_TEXT),
       data=json_values)  # fmt: skip
def test_mutated_pings(
    functions: dict[str, FlaskClient], attributes: dict[str, str], data: Any
) -> None:
    headers = {f"ce-{key}": value for key, value in attributes.items()}
    headers.setdefault("ce-specversion", "1.0")
    response = functions["timer"].post("/", data=json.dumps(data), headers=headers)
    check_answer(response, True)


@FUZZ
@given(
    enabled=st.one_of(st.none(), st.sampled_from(["true", "false", "1"]), st.text(max_size=8)),
    schedule=st.one_of(st.none(), st.sampled_from(["1ns", "@hourly", "0 8 * * 1"]),
                       st.text(max_size=30)),
    created=st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["2025-03-14T08:00:00Z"])),
    name=st.one_of(st.just("cart-1"), st.text(max_size=20)),
)  # fmt: skip
def test_any_pod_gets_a_verdict_never_an_exception(
    enabled: str | None, schedule: str | None, created: str | None, name: str
) -> None:
    pairs = ((ENABLED_ANNOTATION, enabled), (SCHEDULE_ANNOTATION, schedule))
    annotations = {key: value for key, value in pairs if value is not None}
    pod = {"metadata": {"name": name, "namespace": "shop", "annotations": annotations,
                        "creationTimestamp": created}}  # fmt: skip
    check = check_pod(pod, {}, datetime(2030, 1, 1, tzinfo=UTC))
    if enabled is None:
        assert check is None
    elif check is not None:
        assert check.status in ("due", "waiting", "disabled", "invalid", "terminating")
