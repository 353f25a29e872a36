"""OTLP logs requests as an OpenTelemetry Collector's ``otlphttp`` exporter sends them.

A record's body is the tool's JSON line as a string (``filelog`` receiver) or, as after a
``json_parser`` operator, a key-value list whose numbers are doubles (the collector decodes JSON
numbers as float64). JSON requests are written by hand the way the OTLP/JSON spec says
(lowerCamelCase names, hex trace ids, int64 as strings), not by the library under test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def json_any_value(value: Any) -> dict[str, Any]:
    """A JSON value as an OTLP/JSON ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int | float):
        return {"doubleValue": float(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [json_any_value(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    return {}


def key_values(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A mapping as OTLP/JSON ``KeyValue`` items."""
    return [{"key": key, "value": json_any_value(value)} for key, value in mapping.items()]


def record_body(alert: Any, as_kvlist: bool) -> dict[str, Any]:
    """The alert as a string body (its JSON line) or as a key-value list."""
    return json_any_value(alert) if as_kvlist else {"stringValue": json.dumps(alert) + "\n"}


def json_request(
    bodies: Sequence[dict[str, Any]], resource: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An OTLP/JSON ExportLogsServiceRequest with one resource and scope holding the bodies."""
    records = [
        {"timeUnixNano": "1741943600512734000", "observedTimeUnixNano": "1741943600600000000",
         "severityNumber": 9, "severityText": "INFO", "traceId": TRACE_ID, "spanId": SPAN_ID,
         "attributes": [{"key": "log.file.path", "value": {"stringValue": "/var/log/x.log"}}],
         "body": body}
        for body in bodies
    ]  # fmt: skip
    attributes = key_values(resource or {"k8s.namespace.name": "kubearmor"})
    return {"resourceLogs": [{
        "resource": {"attributes": attributes},
        "scopeLogs": [{"scope": {}, "logRecords": records}],
    }]}  # fmt: skip


def encode(request: dict[str, Any], content_type: str) -> bytes:
    """The request as the exporter writes it: OTLP/JSON text, or protobuf of the same content."""
    if content_type == JSON:
        return json.dumps(request).encode()
    return to_protobuf(request).SerializeToString()


def to_protobuf(request: dict[str, Any]) -> ExportLogsServiceRequest:
    """The same request built field by field as a proto message."""
    message = ExportLogsServiceRequest()
    for resource in request["resourceLogs"]:
        resource_logs = message.resource_logs.add()
        for item in resource["resource"]["attributes"]:
            set_any_value(resource_logs.resource.attributes.add(key=item["key"]).value,
                          item["value"])  # fmt: skip
        for scope in resource["scopeLogs"]:
            scope_logs = resource_logs.scope_logs.add()
            for record in scope["logRecords"]:
                log = scope_logs.log_records.add(
                    time_unix_nano=int(record["timeUnixNano"]),
                    trace_id=bytes.fromhex(record["traceId"]),
                    span_id=bytes.fromhex(record["spanId"]),
                )
                set_any_value(log.body, record["body"])
    return message


def set_any_value(target: AnyValue, value: dict[str, Any]) -> None:
    """Fill a proto AnyValue from its OTLP/JSON form."""
    if "stringValue" in value:
        target.string_value = value["stringValue"]
    elif "boolValue" in value:
        target.bool_value = value["boolValue"]
    elif "doubleValue" in value:
        target.double_value = value["doubleValue"]
    elif "intValue" in value:
        target.int_value = int(value["intValue"])
    elif "arrayValue" in value:
        for item in value["arrayValue"]["values"]:
            set_any_value(target.array_value.values.add(), item)
    elif "kvlistValue" in value:
        for item in value["kvlistValue"]["values"]:
            set_any_value(target.kvlist_value.values.add(key=item["key"]).value, item["value"])


def read_response(body: bytes, content_type: str) -> dict[str, Any]:
    """An ExportLogsServiceResponse as OTLP/JSON (decoded from protobuf when it is binary)."""
    if content_type == JSON:
        value: dict[str, Any] = json.loads(body)
        return value
    response = ExportLogsServiceResponse()
    response.ParseFromString(body)
    if not response.HasField("partial_success"):
        return {}
    partial = response.partial_success
    rejected = {"rejectedLogRecords": str(partial.rejected_log_records)}
    return {"partialSuccess": {**rejected, "errorMessage": partial.error_message}}
