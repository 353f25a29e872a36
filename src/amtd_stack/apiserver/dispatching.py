"""The WSGI application: HTTP in, verbs on the Api, JSON (or Table) out, records and faults.

Every client mistake becomes a 4xx `Status`; an unexpected exception becomes a 500 `Status`
(logged), and the server keeps serving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import select
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import yaml
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.wrappers import Request, Response

from amtd.model.objects import Object
from amtd_stack.journals import Journal

from . import discovery, evicting, paging, protobufs, reviewing, scaling, serverside, tables
from .apierrors import ApiError, bad_request
from .authenticating import Credential
from .faults import Fault, FaultPlan, RequestRecord
from .handling import Api, Target, WriteOptions
from .openapiserving import Documents, is_openapi_path, serve_openapi
from .podstreaming import is_pod_stream, refuse_stream
from .reviewprotobufs import decode_review
from .routing import (
    NOT_FOUND_MESSAGE,
    ResourcePath,
    check_collection_scope,
    parse_resource_path,
    resolve_target,
    select_verb,
)
from .securing import Security, request_attributes
from .watching import parse_watch, stream_watch

LOG = logging.getLogger(__name__)
MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"


def json_response(
    status: int, body: Any, headers: dict[str, str] | Headers | None = None
) -> Response:
    """A JSON response."""
    return Response(json.dumps(body), status, headers=headers, mimetype=JSON)


def decode_body(request: Request) -> Any:
    """The request body as JSON (YAML, or kubectl's protobuf for a few kinds, when so declared);
    400 if malformed, 415 for other media types."""
    raw = request.get_data(cache=True)
    mimetype = request.mimetype or JSON
    if mimetype == protobufs.PROTOBUF:
        return protobufs.decode_object(raw)
    try:
        if mimetype in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        if mimetype.endswith("json"):
            return json.loads(raw) if raw.strip() else None
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the request body is not valid JSON/YAML: {exc}") from None
    raise ApiError(
        415, f"the content type {mimetype!r} is not supported; send JSON", "UnsupportedMediaType"
    )


def _client_gone(sock: socket.socket | None) -> bool:
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _until_client_gone(lines: Iterator[bytes], sock: socket.socket | None) -> Iterator[bytes]:
    for line in lines:
        if not line and _client_gone(sock):
            return
        yield line


FIELD_VALIDATIONS = ("Strict", "Warn", "Ignore")


class QueryParameters(ImmutableMultiDict[str, str]):
    """Query parameters whose ``get`` of a missing key returns the default at once: werkzeug's
    raises and catches an HTTP exception for it, and every API request asks for several absent
    parameters (a few per cent of the stand-in's time in an alert storm)."""

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        """As ``MultiDict.get``."""
        return super().get(key, default, type) if key in self else default


class ApiRequest(Request):
    """A werkzeug Request with :class:`QueryParameters`."""

    parameter_storage_class = QueryParameters


def write_options(args: Mapping[str, str]) -> WriteOptions:
    """dryRun and fieldValidation of a write (Warn when unset, as upstream); 400 for others."""
    validation = args.get("fieldValidation") or "Warn"
    if validation not in FIELD_VALIDATIONS:
        raise bad_request(
            f"fieldValidation parameter unsupported: {validation!r} (Strict, Warn or Ignore)"
        )
    warnings: list[str] | None = [] if validation == "Warn" else None
    return WriteOptions(bool(args.get("dryRun")), validation == "Strict", warnings)


def warning_headers(options: WriteOptions) -> Headers:
    """One `Warning: 299 - "..."` header per message the write collected."""
    quoted = [json.dumps(message) for message in options.warnings or ()]
    return Headers([("Warning", f"299 - {text}") for text in quoted])


RequestLog = Journal[RequestRecord]  # every resource request, oldest first


class Dispatcher:
    """The WSGI callable."""

    def __init__(
        self, api: Api, log: RequestLog, faults: FaultPlan, address: Callable[[], str],
        security: Security,
    ) -> None:  # fmt: skip
        self.api = api
        self.security = security
        self.log = log
        self.faults = faults
        self.address = address
        self.openapi = Documents(api.registry)

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        request = ApiRequest(environ)
        request.max_content_length = MAX_BODY_BYTES
        try:
            response = self.dispatch(request)
        except ApiError as error:
            response = json_response(error.code, error.to_status())
        except Exception:  # a bug of ours: report it as a 500 Status and keep serving
            LOG.exception("internal error on %s %s", request.method, request.path)
            response = json_response(500, ApiError(500, "internal error").to_status())
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Authenticate, then route one request."""
        credential = self.security.identify(request.headers, request.path)
        route = parse_resource_path(request.path)
        if route is None or not route.plural:
            self.security.authorize_path(credential.user, request.method, request.path)
        if is_openapi_path(request.path):
            return serve_openapi(self.openapi, request)
        if route is None or not route.plural:
            return json_response(200, self.non_resource(request.path, route))
        if is_pod_stream(route):
            self._authorize(credential, "get" if request.method == "GET" else "create", route)
            refuse_stream(self.api, route)
        return self.resource(request, route, credential)

    def _authorize(self, credential: Credential, verb: str, route: ResourcePath) -> None:
        fields = request_attributes(credential.user, verb, route.group, route.plural,
                                    route.subresource, route.namespace, route.name)  # fmt: skip
        self.security.authorize(fields)

    def non_resource(self, path: str, route: ResourcePath | None) -> Any:
        """Discovery, version, health; 404 Status for anything else."""
        registry = self.api.registry
        parts = [p for p in path.split("/") if p]
        found: Any = None
        if route is not None:
            found = discovery.resource_list(registry, route.group, route.version)
        elif parts in (["healthz"], ["readyz"], ["livez"]):
            found = "ok"
        elif parts == ["version"]:
            found = discovery.KUBE_VERSION
        elif parts == ["api"]:
            found = discovery.api_versions(self.address())
        elif parts == ["apis"]:
            found = discovery.api_groups(registry)
        elif len(parts) == 2 and parts[0] == "apis":
            found = discovery.api_group(registry, parts[1])
        if found is None:
            raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
        return found

    def resource(self, request: Request, route: ResourcePath, credential: Credential) -> Response:
        """A resource request: authorize and record it, maybe fault it, execute it."""
        target = resolve_target(self.api.registry, route)
        verb = select_verb(request.method, route, request.args)
        check_collection_scope(target, verb)
        base = RequestRecord(credential.label, verb, route.group, route.plural, route.subresource,
                             route.namespace, route.name, 0)  # fmt: skip
        attrs = request_attributes(credential.user, verb, route.group, route.plural,
                                   route.subresource, route.namespace, route.name,
                                   request.args.get("fieldSelector", ""))  # fmt: skip
        try:
            self.security.authorize(attrs)
        except ApiError as error:  # refused before anything else, as upstream's filter chain
            self.log.append(_with_status(base, error.code, None))
            raise
        if reviewing.is_review(target.rtype):
            return self._review(request, verb, target, credential)
        fault = self.faults.decide(base)
        if fault is not None and fault.latency_s > 0:
            time.sleep(fault.latency_s)
        if fault is not None and fault.status:
            return self._failed(base, fault)
        try:
            response = self.execute(request, verb, target)
        except ApiError as error:
            self.log.append(_with_status(base, error.code, fault))
            raise
        # Logged before a drop: once the client sees the connection close, the record is there.
        self.log.append(_with_status(base, response.status_code, fault))
        if fault is not None and fault.drop:
            self._drop_connection(request)
        if fault is not None and fault.trickle_s > 0:
            return _trickled(response, fault.trickle_s, request.environ.get("werkzeug.socket"))
        return response

    def _review(
        self, request: Request, verb: str, target: Target, credential: Credential
    ) -> Response:
        """A SelfSubject*Review: answered from the RBAC, never stored."""
        if verb != "create":
            raise ApiError(405, f"{target.rtype.plural} only accept create", "MethodNotAllowed")
        is_protobuf = request.mimetype == protobufs.PROTOBUF
        body = decode_review(request.get_data()) if is_protobuf else decode_body(request)
        answer = reviewing.answer_review(target.rtype, body, credential.user, self.security.index())
        return json_response(201, answer)

    def _failed(self, base: RequestRecord, fault: Fault) -> Response:
        self.log.append(_with_status(base, fault.status, fault))
        error = ApiError(fault.status, f"injected fault: {fault.status}")
        headers = {"Retry-After": "1"} if fault.status == 429 else None
        return json_response(fault.status, error.to_status(), headers)

    @staticmethod
    def _drop_connection(request: Request) -> None:
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def execute(self, request: Request, verb: str, target: Target) -> Response:
        """Run one verb and shape its answer."""
        args, api = request.args, self.api
        options = dataclasses.replace(
            write_options(args),
            manager=serverside.manager_of(args, request.headers.get("User-Agent", "")),
            force=args.get("force") == "true",
        )
        if verb == "watch":
            return self._watch(request, target)
        if verb == "patch":
            serverside.check_patch_options(args, request.mimetype)
        if target.subresource == scaling.SUBRESOURCE:
            body = None if verb == "get" else decode_body(request)
            return json_response(
                200, scaling.serve_scale(api, verb, target, body, request.mimetype, options)
            )
        if verb in ("get", "list"):
            return self._read(request, verb, target)
        if verb == "create" and target.subresource:  # pods/eviction
            return json_response(*evicting.evict(api, target, decode_body(request)))
        if verb in ("create", "update", "patch"):
            return self._write(request, verb, target, options)
        delete_options = self._delete_options(request)
        if verb == "delete":
            return json_response(*api.delete(target, delete_options))
        labels, fields = args.get("labelSelector", ""), args.get("fieldSelector", "")
        return json_response(200, api.delete_collection(target, labels, fields, delete_options))

    def _write(
        self, request: Request, verb: str, target: Target, options: WriteOptions
    ) -> Response:
        body, api = decode_body(request), self.api
        if verb == "create":
            return json_response(201, api.create(target, body, options), warning_headers(options))
        if verb == "update":
            return json_response(200, api.update(target, body, options), warning_headers(options))
        if request.mimetype == serverside.APPLY_PATCH:  # 201 when the apply created it
            created, applied = api.apply(target, body, options)
            return json_response(201 if created else 200, applied, warning_headers(options))
        patched = api.patch(target, body, request.mimetype, options)
        return json_response(200, patched, warning_headers(options))

    @staticmethod
    def _delete_options(request: Request) -> Object:
        body = decode_body(request) if request.get_data(cache=True).strip() else None
        if body is not None and not isinstance(body, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        options: Object = dict(body or {})
        for key in ("propagationPolicy", "orphanDependents", "dryRun", "gracePeriodSeconds"):
            if key in request.args and key not in options:
                options[key] = request.args[key]
        return options

    def _read(self, request: Request, verb: str, target: Target) -> Response:
        args = request.args
        if verb == "get":
            obj = self.api.get(target)
            objects, rv = [obj], obj["metadata"].get("resourceVersion", "")
        else:
            listed = self.api.list(
                target, args.get("labelSelector", ""), args.get("fieldSelector", ""),
                paging.read_page(args),
            )  # fmt: skip
            objects, rv = listed["items"], listed["metadata"]["resourceVersion"]
        if tables.wants_table(request.headers.get("Accept", "")):
            include = args.get("includeObject", "Metadata")
            return json_response(200, tables.to_table(target.rtype, objects, rv, include))
        return json_response(200, obj if verb == "get" else listed)

    def _watch(self, request: Request, target: Target) -> Response:
        spec = parse_watch(target, request.args)
        render = None
        if tables.wants_table(request.headers.get("Accept", "")):
            include = request.args.get("includeObject", "Metadata")

            def render(obj: Object, _type: str) -> Object:
                rv = obj["metadata"].get("resourceVersion", "")
                return tables.to_table(target.rtype, [obj], rv, include)

        lines = stream_watch(self.api, spec, render)
        sock = request.environ.get("werkzeug.socket")
        self.api.store.open_stream()
        counted = _ending_stream(_until_client_gone(lines, sock), self.api.store.end_stream)
        return Response(counted, 200, mimetype=JSON, direct_passthrough=True)


def _trickled(response: Response, interval_s: float, sock: socket.socket | None) -> Response:
    """The same answer, its body sent one byte every ``interval_s`` (until the client leaves)."""
    body = response.get_data()

    def drip() -> Iterator[bytes]:
        for index in range(len(body)):
            if _client_gone(sock):
                return
            yield body[index : index + 1]
            time.sleep(interval_s)

    return Response(drip(), response.status_code, mimetype=JSON, direct_passthrough=True)


def _with_status(base: RequestRecord, status: int, fault: Fault | None) -> RequestRecord:
    kind = ""
    if fault is not None and fault.trickle_s > 0 and not (fault.drop or fault.status):
        kind = "trickle"
    elif fault is not None:
        kind = "drop" if fault.drop else ("status" if fault.status else "latency")
    return dataclasses.replace(base, status=status, fault=kind)


def _ending_stream(lines: Iterator[bytes], end: Callable[[], None]) -> Iterator[bytes]:
    """``lines``, then ``end()`` once they are exhausted or abandoned."""
    try:
        yield from lines
    finally:
        end()
