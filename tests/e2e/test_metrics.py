"""The chain's figures on the embedded stack: after a Falco alert → delete, ingest-falco, the
matcher and executor-delete each show it on their own ``/metrics`` (read with prometheus_client's
parser). Other tests share the stack, so what is asserted is how much each count moved.
"""

from __future__ import annotations

import pytest

from amtd_stack.running.scraping import Samples, scrape, total
from support.stacks import (
    LiveStack,
    delete_by_falco_alert,
    wait_for,
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
    before = read_figures(live)  # a workload and a policy move none of them

    delete_by_falco_alert(live, "metrics-delete")

    expected = {name: count + 1 for name, count in before.items()}
    wait_for(lambda: read_figures(live) == expected or None, f"the figures to reach {expected}")
    ingest = scrape(live.function_url("ingest-falco"))
    assert total(ingest, "amtd_request_duration_seconds_count", code="201") >= 1
