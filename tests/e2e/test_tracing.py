"""One trace across the chain on the embedded stack (docs/tracing.md): every function exports
OTLP/HTTP to a local receiver; one Falco alert that deletes a pod yields ONE trace whose spans
cover ingest-falco, the matcher and executor-delete, each the child of the one before.

This module runs its own stack (tracing on for every function); the other e2e tests share theirs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amtd.model.traces import TRACEPARENT_ANNOTATION
from amtd_stack.running.traces import read_ids, tracing_env
from support.stacks import LiveStack, delete_by_falco_alert, run_stack, wait_for
from support.traces import TraceReceiver, run_trace_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def receiver() -> Iterator[TraceReceiver]:
    """The OTLP/HTTP receiver every function of this module's stack exports to."""
    with run_trace_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def live(receiver: TraceReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A stack of its own whose functions all trace (named ``live``: failures carry its logs)."""
    with run_stack(tmp_path_factory.mktemp("e2e-traced"), tracing_env(receiver.url)) as running:
        yield running


def test_one_alert_that_deletes_a_pod_is_one_trace(
    live: LiveStack, receiver: TraceReceiver
) -> None:
    event = delete_by_falco_alert(live, "traced-delete")
    trace_id = read_ids(event["metadata"]["annotations"][TRACEPARENT_ANNOTATION])[:32]
    wanted = {"amtd.ingest.request", "amtd.ingest.alert", "amtd.decide", "amtd.execute"}
    wait_for(lambda: wanted <= {span.name for span in receiver.spans_of(trace_id)} or None,
             f"spans {sorted(wanted)} in trace {trace_id}")  # fmt: skip
    spans = receiver.spans_of(trace_id)
    by_name = {span.name: span for span in spans}
    assert {span.service for span in spans} >= {"ingest-falco", "matcher", "executor-delete"}
    (root,) = [span for span in spans if span.parent_span_id == ""]  # one trace, one root
    assert (root.name, root.service) == ("amtd.ingest.request", "ingest-falco")
    known = {span.span_id for span in spans}
    assert all(span.parent_span_id in known for span in spans if span is not root)
    assert by_name["amtd.ingest.alert"].parent_span_id == root.span_id
    decides = [span for span in spans if span.name == "amtd.decide"]
    assert all(span.parent_span_id == by_name["amtd.ingest.alert"].span_id for span in decides)
    executes = [span for span in spans if span.name == "amtd.execute"]
    assert {span.parent_span_id for span in executes} <= {span.span_id for span in decides}
    execute = executes[0]
    assert (execute.service, execute.attributes["amtd.results"]) == (
        "executor-delete", ["Succeeded"],
    )  # fmt: skip
    assert by_name["amtd.decide"].attributes["amtd.outcome"] == "Decided"
