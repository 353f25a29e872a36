"""Serving /openapi/v3 and its group-version documents from a cache, and refusing /openapi/v2.

As the real server does: a document asked for with a stale `?hash=` is redirected (301) to the
current one, a hashed URL is cacheable for good (its content never changes), an `If-None-Match`
with the current ETag gets 304. Documents are rebuilt only when their group version's types
changed (a CRD was created, changed or deleted), so a request costs a lookup and a write.
"""

from __future__ import annotations

import json
import threading
import time

from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

from amtd.model.objects import Object

from .apierrors import ApiError
from .openapi import Document, build_document, gv_path
from .resources import Registry

PREFIX = "/openapi/"
JSON = "application/json"
ONE_YEAR_S = 365 * 24 * 3600
# kubectl asks for /openapi/v2 as protobuf and, on a 404, for the pre-1.10 path.
V2_PATHS = ("/openapi/v2", "/swagger-2.0.0.pb-v1")
NOT_SERVED_V2 = (
    "OpenAPI v2 is not served by the embedded amtd stack; clients use /openapi/v3 "
    "(kubectl explain, validation and apply do)"
)


def is_openapi_path(path: str) -> bool:
    """Whether a request path is one of the OpenAPI endpoints."""
    return path.rstrip("/") in (*V2_PATHS, "/openapi/v3") or path.startswith("/openapi/v3/")


class Documents:
    """The OpenAPI v3 documents of a registry, rebuilt per group version when its types change."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Document] = {}

    def document(self, group: str, version: str) -> Document | None:
        """The current document of a group version, or None when nothing is served there."""
        types = self._registry.in_group_version(group, version)
        if not types:
            return None
        with self._lock:
            cached = self._cache.get((group, version))
            if cached is None or not cached.is_current(types):
                cached = self._cache[(group, version)] = build_document(types)
            return cached

    def index(self) -> Object:
        """GET /openapi/v3: every served group version with its document's hashed URL."""
        served = self._registry.group_versions()
        with self._lock:  # forget group versions no longer served (a deleted CRD)
            for gone in set(self._cache) - set(served):
                del self._cache[gone]
        paths: Object = {}
        for group, version in served:
            document = self.document(group, version)
            if document is not None:
                path = gv_path(group, version)
                url = f"/openapi/v3/{path}?hash={document.digest}"
                paths[path] = {"serverRelativeURL": url}
        return {"paths": paths}


def _accepts_json(request: Request) -> bool:
    accept = request.headers.get("Accept", "")
    return not accept or any(t in accept for t in ("json", "*/*", "application/*"))


def _split_group_version(path: str) -> tuple[str, str] | None:
    parts = [p for p in path.removeprefix("/openapi/v3/").split("/") if p]
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


def _document_response(request: Request, document: Document, path: str) -> Response:
    etag = f'"{document.digest}"'
    asked = request.args.get("hash")
    if asked is not None and asked != document.digest:
        return Response(status=301, headers={"Location": f"{path}?hash={document.digest}"})
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag})
    headers = {"ETag": etag}
    if asked:  # a hashed URL's content never changes
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = http_date(time.time() + ONE_YEAR_S)
    return Response(document.body, 200, headers=headers, mimetype=JSON)


def serve_openapi(documents: Documents, request: Request) -> Response:
    """Answer one OpenAPI request; ApiError (404, 405, 406) for what is not served."""
    path = request.path.rstrip("/")
    if request.method not in ("GET", "HEAD"):
        raise ApiError(405, f"the server does not allow this method on {path}", "MethodNotAllowed")
    if path in V2_PATHS:
        raise ApiError(404, NOT_SERVED_V2, "NotFound")
    if not _accepts_json(request):
        raise ApiError(406, "only application/json is served for OpenAPI v3", "NotAcceptable")
    if path == "/openapi/v3":
        return Response(json.dumps(documents.index()), 200, mimetype=JSON)
    group_version = _split_group_version(path)
    document = documents.document(*group_version) if group_version else None
    if document is None:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return _document_response(request, document, path)
