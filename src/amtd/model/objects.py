"""Objects: a Kubernetes object as JSON (a manifest, a patch, what the API server returned)."""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]
JsonPatch = list[Object]  # RFC 6902 operations, each an object
