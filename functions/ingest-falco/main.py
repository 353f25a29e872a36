"""ingest-falco: Falco alerts in, SecurityEvents out.

Accepts Falco's ``http_output`` JSON, the Falcosidekick webhook (same JSON plus ``uuid``) and
Falcosidekick CloudEvents (binary or structured, directly or through the Broker). See
docs/ingest.md for configuration, authentication and answers.
"""

from __future__ import annotations

import os

import flask
import functions_framework

from amtd.edge.logs import configure_logging
from amtd.edge.receiving import answer_outcome, process_item, receive, serve_ingest, warn_if_open
from amtd.ingest.documents import check_media_type, parse_single_object
from amtd.ingest.falco import DEFAULT_RULE_SOURCE, check_falco_cloudevent, parse_falco_alert
from amtd.ingest.ingesting import AlertRecorder

configure_logging(os.environ)
RECORDER = AlertRecorder.from_env("ingest-falco", os.environ)
warn_if_open(os.environ)


@functions_framework.http
def ingest_falco_alert(request: flask.Request) -> flask.Response:
    """One Falco alert per request (health probes answered first)."""
    return serve_ingest(request, ingest, os.environ)


def ingest(request: flask.Request) -> flask.Response:
    """Decode → map → create → answer."""
    delivery = receive(request, os.environ)
    check_media_type(delivery.payload.media_type, allow_lines=False)
    extensions = delivery.envelope.attributes if delivery.envelope else {}
    if delivery.envelope is not None:
        check_falco_cloudevent(extensions)
    rule_source = os.environ.get("RULE_SOURCE", "").strip() or DEFAULT_RULE_SOURCE
    outcome = process_item(
        lambda: parse_falco_alert(parse_single_object(delivery.payload.body), rule_source,
                                  extensions),
        lambda alert: RECORDER.record(alert, delivery.received_at, os.environ),
        "body",
    )  # fmt: skip
    return answer_outcome(outcome, delivery)
