"""OTLP logs: an OpenTelemetry Collector's ``otlphttp`` export, read as the alert documents the
KubeArmor and Falco mappers take, and its answer (docs/ingest.md, "OpenTelemetry Collector"). Pure.

A request is an ``ExportLogsServiceRequest`` in protobuf (``application/x-protobuf``) or OTLP/JSON
(``application/json``), decoded into the proto message by the protobuf library either way. Each
log record's ``body`` is the alert: a string holding the tool's JSON line (the ``filelog``
receiver), or a key-value list (after a ``json_parser`` operator). The answer is an
``ExportLogsServiceResponse`` in the request's encoding; records refused are counted in its
``partialSuccess``. protobuf is imported on the first OTLP request only: the other paths of the
ingest functions keep their cold start (~25 ms less).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amtd.ingest.documents import Document, UnsupportedMediaError, check_count, make_document
from amtd.ingest.fields import InvalidFieldError, parse_json

if TYPE_CHECKING:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

LOGS_PATH = "/v1/logs"
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPE = "application/json"
NAMESPACE_ATTRIBUTE = "k8s.namespace.name"
POD_ATTRIBUTE = "k8s.pod.name"
# OTLP/JSON writes these bytes fields as hex; the proto3 JSON mapping reads bytes as base64.
HEX_ID_FIELDS = ("traceId", "spanId")
MAX_MESSAGE_RECORDS = 5  # labels quoted in partialSuccess.errorMessage
# Off by default: with filelog on the tool's own output, the resource is the tool's pod (the
# KubeArmor relay, Falco), and a host alert would be pinned on it.
RESOURCE_TARGET_ENV = "OTLP_TARGET_FROM_RESOURCE"


@dataclass(frozen=True)
class LogRecord:
    """One log record's body as a document, and the pod its resource names (if both are set)."""

    document: Document
    resource_pod: tuple[str, str] | None = None


def is_resource_target_enabled(env: Mapping[str, str]) -> bool:
    """``OTLP_TARGET_FROM_RESOURCE=true``: a record's resource may name the alert's pod."""
    return env.get(RESOURCE_TARGET_ENV, "").strip().lower() == "true"


def is_protobuf(media_type: str) -> bool:
    """Whether the request (and so the answer) is binary protobuf rather than OTLP/JSON."""
    return media_type in PROTOBUF_TYPES


def read_log_records(body: bytes, media_type: str) -> list[LogRecord]:
    """Every log record of an export request, in order; InvalidFieldError when undecodable."""
    request = decode_request(body, media_type)
    records = list(iterate_records(request))
    check_count([record.document for record in records])
    return records


def decode_request(body: bytes, media_type: str) -> ExportLogsServiceRequest:
    """The proto message from either encoding (415 for any other Content-Type)."""
    from google.protobuf import json_format, message
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    if is_protobuf(media_type):
        try:
            request.ParseFromString(body)
        except (message.DecodeError, RecursionError):
            raise InvalidFieldError("body", "is not an OTLP ExportLogsServiceRequest") from None
        return request
    if media_type != JSON_TYPE:
        raise UnsupportedMediaError(
            f"Content-Type {(media_type or '(none)')[:80]} is not accepted on {LOGS_PATH}; "
            "send application/x-protobuf or application/json"
        )
    value = convert_hex_ids(parse_json(body, "body"))
    try:
        json_format.ParseDict(value, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as error:
        detail = str(error)[:200]
        raise InvalidFieldError("body", f"is not an OTLP/JSON logs request ({detail})") from None
    return request


def convert_hex_ids(value: Any) -> Any:
    """The JSON request with each log record's hex ``traceId``/``spanId`` as base64."""
    for record in walk_json_records(value):
        for key in HEX_ID_FIELDS:
            if isinstance(record.get(key), str) and record[key]:
                record[key] = hex_to_base64(record[key], key)
    return value


def walk_json_records(value: Any) -> Iterator[dict[str, Any]]:
    """The log record objects of a decoded OTLP/JSON request (malformed parts are skipped: the
    proto decoding after this names them)."""
    for resource in as_list(value.get("resourceLogs") if isinstance(value, dict) else None):
        for scope in as_list(resource.get("scopeLogs") if isinstance(resource, dict) else None):
            records = as_list(scope.get("logRecords") if isinstance(scope, dict) else None)
            yield from (record for record in records if isinstance(record, dict))


def as_list(value: Any) -> list[Any]:
    """A JSON array, or nothing."""
    return value if isinstance(value, list) else []


def hex_to_base64(text: str, field: str) -> str:
    """``5b8e…`` → base64 of the same bytes."""
    try:
        return base64.b64encode(bytes.fromhex(text)).decode("ascii")
    except (ValueError, binascii.Error):
        raise InvalidFieldError(field, "must be hex") from None


def iterate_records(request: ExportLogsServiceRequest) -> Iterator[LogRecord]:
    """Each record, labelled by its place in the request."""
    for r, resource_logs in enumerate(request.resource_logs):
        pod = read_resource_pod(resource_logs.resource.attributes)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for index, record in enumerate(scope_logs.log_records):
                label = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{index}]"
                yield LogRecord(read_body_document(record.body, label), pod)


def read_resource_pod(attributes: Any) -> tuple[str, str] | None:
    """``(namespace, pod)`` when the resource names both (k8sattributes processor)."""
    values = {item.key: item.value.string_value for item in attributes}
    namespace, pod = values.get(NAMESPACE_ATTRIBUTE), values.get(POD_ATTRIBUTE)
    return (namespace, pod) if namespace and pod else None


def read_body_document(body: AnyValue, label: str) -> Document:
    """The alert in a record's body: JSON text, or a key-value list; anything else is bad."""
    kind = body.WhichOneof("value")
    if kind == "string_value":
        try:
            return Document(label, parse_json(body.string_value, "body"))
        except InvalidFieldError as error:
            return Document(label, error=error)
    if kind == "kvlist_value":
        return make_document(label, convert_key_values(body.kvlist_value.values))
    problem = f"must be a string or a key-value list, got {kind or 'nothing'}"
    return Document(label, error=InvalidFieldError("body", problem))


def convert_key_values(items: Any) -> dict[str, Any]:
    """A ``KeyValueList`` as a JSON object (a repeated key: the last one wins, as in JSON)."""
    pairs: list[KeyValue] = list(items)
    return {item.key: convert_any_value(item.value) for item in pairs}


def convert_any_value(value: AnyValue) -> Any:
    """An ``AnyValue`` as the JSON value a collector's json_parser made it from."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return convert_key_values(value.kvlist_value.values)
    if kind == "array_value":
        return [convert_any_value(item) for item in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind) if kind else None


def as_alert_object(value: Any) -> Mapping[str, Any]:
    """A record's alert must be a JSON object."""
    if not isinstance(value, dict):
        raise InvalidFieldError("body", f"must be a JSON object, got {type(value).__name__}")
    return value


def fill_kubearmor_pod(alert: Mapping[str, Any], pod: tuple[str, str] | None) -> Mapping[str, Any]:
    """The KubeArmor alert, its pod taken from the resource when it names none itself."""
    if pod is None or "NamespaceName" in alert or "PodName" in alert:
        return alert
    return {**alert, "NamespaceName": pod[0], "PodName": pod[1]}


def fill_falco_pod(alert: Mapping[str, Any], pod: tuple[str, str] | None) -> Mapping[str, Any]:
    """The Falco alert, its ``output_fields`` pod taken from the resource when absent."""
    fields = alert.get("output_fields")
    if pod is None or not isinstance(fields, dict | None):
        return alert
    present = fields or {}
    if "k8s.ns.name" in present or "k8s.pod.name" in present:
        return alert
    return {**alert, "output_fields": {**present, "k8s.ns.name": pod[0], "k8s.pod.name": pod[1]}}


def build_logs_response(rejected: list[str], protobuf: bool) -> bytes:
    """An ``ExportLogsServiceResponse``: partialSuccess only when records were refused."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    response = ExportLogsServiceResponse()
    if rejected:
        response.partial_success.rejected_log_records = len(rejected)
        response.partial_success.error_message = describe_rejections(rejected)
    if protobuf:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode("utf-8")


def describe_rejections(rejected: list[str]) -> str:
    """The first few refused records, each with why."""
    shown = "; ".join(rejected[:MAX_MESSAGE_RECORDS])
    more = len(rejected) - MAX_MESSAGE_RECORDS
    return f"{len(rejected)} log records rejected: {shown}" + (f"; {more} more" if more > 0 else "")
