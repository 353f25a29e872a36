"""Claiming: one step at a time may act on a pod. Pure.

Delivery is at-least-once and two SecurityEvents may ask for different actions on one pod at
once (delete + quarantine). Before acting, an executor merge-patches ``claimed-by: <stepId>`` onto
the pod together with the resourceVersion it read: the API server answers 409 if anyone wrote the
pod in between, so exactly one claimant wins. A retry of the same step finds its own claim and
carries on; any other step finds a foreign claim and is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amtd import GROUP

CLAIMED_BY = f"{GROUP}/claimed-by"


def read_claim(pod: Mapping[str, Any]) -> str | None:
    """The step id that claimed the pod, if any."""
    annotations: Mapping[str, str] = pod["metadata"].get("annotations") or {}
    return annotations.get(CLAIMED_BY)


def is_claimed_by_other(pod: Mapping[str, Any], step_id: str) -> bool:
    """Whether another step already claimed the pod."""
    claim = read_claim(pod)
    return claim is not None and claim != step_id


def build_claim_patch(pod: Mapping[str, Any], step_id: str) -> dict[str, Any] | None:
    """Merge patch claiming the pod for a step (conditional on its resourceVersion).

    None when this step already holds the claim (a retry): nothing to write.
    """
    if read_claim(pod) == step_id:
        return None
    return {
        "metadata": {
            "resourceVersion": pod["metadata"].get("resourceVersion"),
            "annotations": {CLAIMED_BY: step_id},
        }
    }
