"""Server-side apply is not served: an apply patch is a clear 415 naming what to use instead.

Real server-side apply needs managed fields tracked for every writer (updates included) and
structured merges keyed by each list's merge keys; a partial version would merge differently
from a real server, silently. So `application/apply-patch+yaml` (`kubectl apply --server-side`,
`kubectl diff --server-side`) is refused before anything is read or written (pure).
"""

from __future__ import annotations

from .apierrors import ApiError

APPLY_PATCH = "application/apply-patch+yaml"
REFUSAL = (
    "server-side apply (application/apply-patch+yaml) is not supported by this API server "
    "stand-in; use client-side apply (`kubectl apply` or `kubectl diff` without "
    "--server-side), or a merge, strategic-merge or JSON patch"
)


def check_patch_type(content_type: str) -> None:
    """415 UnsupportedMediaType for an apply patch; other patch types pass."""
    if content_type == APPLY_PATCH:
        raise ApiError(415, REFUSAL, "UnsupportedMediaType")
