"""The chain's figures on the embedded stack: after a Falco alert → delete, ingest-falco, the
matcher and executor-delete each show it on their own ``/metrics`` (read with prometheus_client's
parser). Other tests share the stack, so what is asserted is how much each count moved.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from amtd_stack.running.scraping import Samples, scrape, total
from support.builders import SHELL_RULE, create_policy, falco_alert
from support.stacks import (
    LiveStack,
    create_workload,
    is_gone,
    wait_for,
    wait_for_executions,
    wait_for_security_event,
)

pytestmark = pytest.mark.e2e
FIGURES = {  # function → (sample, labels) whose count one alert → delete moves by one
    "ingest-falco": ("amtd_ingest_alerts_total", {"source": "falco", "result": "created"}),
    "matcher": ("amtd_matcher_decisions_total", {"outcome": "Matched", "action": "delete"}),
    "executor-delete": (
        "amtd_executor_executions_total",
        {"action": "delete", "result": "Succeeded", "reason": "PodDeleted"},
    ),
}


def read_figures(live: LiveStack) -> dict[str, float]:
    """Each function's figure, scraped from its own process."""
    scraped: dict[str, Samples] = {name: scrape(live.function_url(name)) for name in FIGURES}
    return {name: total(scraped[name], sample, **labels)
            for name, (sample, labels) in FIGURES.items()}  # fmt: skip


def test_an_alert_that_deletes_a_pod_moves_each_functions_figures(live: LiveStack) -> None:
    namespace = "metrics-delete"
    victim = create_workload(live.cluster, namespace, "web")[0]["metadata"]["name"]
    create_policy(live.cluster, namespace, [({"type": SHELL_RULE}, "delete")])
    before = read_figures(live)

    alert = falco_alert(namespace, victim, at=datetime.now(UTC))
    answer = live.post_alert("ingest-falco", json.dumps(alert))

    assert answer.status_code == 201, answer.text
    event = wait_for_security_event(live.cluster, f"{namespace}/{victim}")
    wait_for_executions(live.cluster, event["metadata"]["name"])
    assert is_gone(live.cluster, namespace, victim)
    expected = {name: count + 1 for name, count in before.items()}
    wait_for(lambda: read_figures(live) == expected or None, f"the figures to reach {expected}")
    ingest = scrape(live.function_url("ingest-falco"))
    assert total(ingest, "amtd_request_duration_seconds_count", code="201") >= 1
