"""Delivery specs, ISO-8601 durations, backoff arithmetic and the retry rule (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from amtd_stack.eventing.deliveries import (
    DeliverySpec,
    Destination,
    SpecError,
    compute_backoff,
    is_retryable,
    parse_delivery,
    parse_destination,
    parse_duration,
    select_delivery,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.01S", 0.01),
        ("PT10S", 10),
        ("PT1M", 60),
        ("PT1H30M", 5400),
        ("P1D", 86400),
        ("P1W", 604800),
        ("P1DT1S", 86401),
        ("PT0.5S", 0.5),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text, "f") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10s", "PT", "P", "P1Y", "P1M", "PT1.S", "", 5, "P1DT"])
def test_bad_durations_are_refused(text: Any) -> None:
    with pytest.raises(SpecError) as caught:
        parse_duration(text, "spec.delivery.timeout")
    assert caught.value.field == "spec.delivery.timeout"


@pytest.mark.parametrize(
    ("policy", "delay", "retry", "expected"),
    [
        ("linear", 0.5, 1, 0.5),
        ("linear", 0.5, 3, 1.5),
        ("exponential", 0.2, 1, 0.4),
        ("exponential", 0.2, 3, 1.6),
    ],
)
def test_backoff(policy: str, delay: float, retry: int, expected: float) -> None:
    spec = DeliverySpec(retry=5, backoff_policy=policy, backoff_delay_s=delay)
    assert compute_backoff(spec, retry) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (None, True),
        (500, True),
        (502, True),
        (503, True),
        (404, True),
        (408, True),
        (409, True),
        (429, True),
        (400, False),
        (401, False),
        (403, False),
        (410, False),
        (422, False),
    ],
)
def test_retryable_statuses(status: int | None, retryable: bool) -> None:
    assert is_retryable(status) is retryable


def test_delivery_parses_every_field() -> None:
    spec = parse_delivery(
        {
            "retry": 4,
            "backoffPolicy": "linear",
            "backoffDelay": "PT0.5S",
            "timeout": "PT10S",
            "deadLetterSink": {
                "ref": {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "name": "dead-letters",
                }
            },
        },
        "amtd-system",
        "spec.delivery",
    )
    assert spec == DeliverySpec(
        retry=4,
        backoff_policy="linear",
        backoff_delay_s=0.5,
        timeout_s=10.0,
        dead_letter_sink=Destination(
            api_version="serving.knative.dev/v1",
            kind="Service",
            name="dead-letters",
            namespace="amtd-system",
        ),
    )


@pytest.mark.parametrize(
    ("delivery", "field"),
    [
        ({"retry": -1}, "spec.delivery.retry"),
        ({"retry": "3"}, "spec.delivery.retry"),
        ({"backoffPolicy": "fibonacci"}, "spec.delivery.backoffPolicy"),
        ({"backoffDelay": "0.5s"}, "spec.delivery.backoffDelay"),
        ({"timeout": "ten"}, "spec.delivery.timeout"),
        ({"deadLetterSink": {}}, "spec.delivery.deadLetterSink"),
        ({"deadLetterSink": {"ref": {"kind": "Service"}}}, "spec.delivery.deadLetterSink.ref"),
    ],
)
def test_bad_delivery_is_refused_naming_the_field(delivery: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_delivery(delivery, "ns", "spec.delivery")
    assert caught.value.field == field


def test_destination_uri_and_ref_with_relative_path() -> None:
    assert parse_destination({"uri": "http://x/y"}, "ns", "f") == Destination(uri="http://x/y")
    ref = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}
    assert parse_destination({"ref": ref, "uri": "/sub"}, "ns", "f").namespace == "ns"
    with pytest.raises(SpecError):
        parse_destination({"ref": ref, "uri": "http://absolute"}, "ns", "f")


def test_trigger_delivery_wins_whole_over_broker_delivery() -> None:
    trigger = DeliverySpec(retry=1)
    broker = DeliverySpec(retry=9, timeout_s=1.0)
    assert select_delivery(trigger, broker) is trigger
    assert select_delivery(None, broker) is broker
    assert select_delivery(None, None) == DeliverySpec()
