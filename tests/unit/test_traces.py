"""amtd.model.traces: trace context from hostile input is used only when exactly W3C-shaped."""

from __future__ import annotations

from typing import Any

import pytest

from amtd.model.traces import (
    TRACEPARENT_ANNOTATION,
    make_trace_annotations,
    read_annotated_traceparent,
    read_traceparent,
    read_tracestate,
)

VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_valid_traceparent_is_kept() -> None:
    assert read_traceparent(VALID) == VALID


@pytest.mark.parametrize(
    "value",
    [
        VALID.upper(), VALID + "-01", VALID[:-1], " " + VALID, VALID.replace("-", "_"),
        "ff" + VALID[2:], "01" + VALID[2:],  # a version we cannot read
        VALID.replace("0af7651916cd43dd8448eb211c80319c", "0" * 32),
        VALID.replace("b7ad6b7169203331", "0" * 16), VALID + "x" * 10_000, None, 42, "",
    ],
)  # fmt: skip
def test_anything_else_is_ignored(value: Any) -> None:
    assert read_traceparent(value) is None


def test_tracestate_is_bounded_and_well_formed() -> None:
    assert read_tracestate("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7") == (
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    )
    assert read_tracestate("a=" + "b" * 600) is None
    assert read_tracestate(",".join(f"k{n}=v" for n in range(33))) is None
    assert read_tracestate("Upper=1") is None
    assert read_tracestate("k=v\nx") is None


def test_the_annotation_round_trips_and_a_forged_one_is_ignored() -> None:
    annotations = make_trace_annotations(VALID)
    assert annotations == {TRACEPARENT_ANNOTATION: VALID}
    assert read_annotated_traceparent({"metadata": {"annotations": annotations}}) == VALID
    forged = {"metadata": {"annotations": {TRACEPARENT_ANNOTATION: VALID + ";evil"}}}
    assert read_annotated_traceparent(forged) is None
    assert read_annotated_traceparent({"metadata": {"annotations": "no"}}) is None
    assert make_trace_annotations("junk") == {}
