"""Eviction: ``POST pods/{name}/eviction``, a delete that honours PodDisruptionBudgets.

As the real server: the body is a policy/v1 ``Eviction`` naming the pod; its ``deleteOptions``
preconditions (uid, resourceVersion) are checked like a DELETE's (409); a pod that is not
running, or already terminating, is deleted without a budget check; otherwise the one budget in
the namespace whose selector matches the pod must allow a disruption, else 429 with a
``DisruptionBudget`` cause naming the budget (more than one matching budget: 500, as upstream).
The disruption controller's ``status.disruptionsAllowed`` is computed here from the pods as
they are, under the store lock, so two evictions cannot both spend the last disruption.
"""

from __future__ import annotations

import math
from typing import Any

from amtd.model.objects import Object

from . import deleting
from .apierrors import ApiError, bad_request, conflict, not_found
from .handling import Api, Target
from .selectors import match_label_selector_object
from .storing import KindKey

BUDGETS: KindKey = ("policy", "poddisruptionbudgets")
EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
TERMINAL_OR_PENDING = ("Pending", "Succeeded", "Failed")
BLOCKED_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


def evict(api: Api, target: Target, body: Any) -> tuple[int, Object]:
    """Evict the pod ``target`` names: 201 with a Success Status, or the ApiError why not."""
    options = read_eviction(body, target.name)
    with api.store.lock:
        pod = api.store.get(target.kind_key, target.namespace, target.name)
        if pod is None:
            raise not_found("pods", target.name)
        check_preconditions(pod, options.get("preconditions") or {})
        if not is_budget_exempt(pod):
            check_budgets(api, target.namespace, pod)
        if not options.get("dryRun"):
            deleting.request_deletion(api.store, api.registry, target.kind_key, pod)
    return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


def read_eviction(body: Any, name: str) -> dict[str, Any]:
    """The Eviction's deleteOptions; 400 for anything that is not an Eviction of this pod."""
    if not isinstance(body, dict) or body.get("kind") != "Eviction":
        raise bad_request("the request body must be an Eviction (policy/v1)")
    if body.get("apiVersion") not in EVICTION_VERSIONS:
        raise bad_request(f"unsupported Eviction apiVersion {body.get('apiVersion')!r}")
    meta = body.get("metadata")
    if not isinstance(meta, dict) or meta.get("name") != name:
        raise bad_request("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise bad_request("deleteOptions must be a JSON object")
    return options


def check_preconditions(pod: Object, preconditions: Any) -> None:
    """409 unless the pod is the incarnation (uid) and version the preconditions name."""
    if not isinstance(preconditions, dict):
        raise bad_request("deleteOptions.preconditions must be a JSON object")
    meta = pod["metadata"]
    uid, version = preconditions.get("uid"), preconditions.get("resourceVersion")
    if (uid and uid != meta["uid"]) or (version and version != meta["resourceVersion"]):
        raise conflict("pods", meta["name"])


def is_budget_exempt(pod: Object) -> bool:
    """Pods a budget does not protect: terminating, finished or never started (as upstream)."""
    phase = (pod.get("status") or {}).get("phase")
    return bool(pod["metadata"].get("deletionTimestamp")) or phase in TERMINAL_OR_PENDING


def check_budgets(api: Api, namespace: str, pod: Object) -> None:
    """Raise 429 when the pod's budget allows no disruption (500 for several budgets)."""
    labels = pod["metadata"].get("labels") or {}
    budgets = [b for b in api.store.items(BUDGETS, namespace) if selects(b, labels)]
    if len(budgets) > 1:
        raise ApiError(500, "This pod has more than one PodDisruptionBudget, which the eviction "
                       "subresource does not support.", "InternalError")  # fmt: skip
    if not budgets:
        return
    budget = budgets[0]
    pods = [p for p in api.store.items(("", "pods"), namespace) if selects(budget, labelled(p))]
    healthy = sum(1 for p in pods if is_healthy(p))
    desired = count_desired_healthy(budget.get("spec") or {}, len(pods))
    # evicting an unhealthy pod costs no healthy one: it only needs the budget not already broken
    cost = 1 if is_healthy(pod) else 0
    if healthy - cost < desired:
        name = budget["metadata"]["name"]
        cause = {
            "reason": "DisruptionBudget",
            "message": f"The disruption budget {name} needs {desired} healthy pods and has "
            f"{healthy} currently",
        }
        raise ApiError(429, BLOCKED_MESSAGE, "TooManyRequests", {"causes": [cause]})


def selects(budget: Object, labels: dict[str, str]) -> bool:
    """Whether the budget's selector matches these labels (policy/v1: no selector matches no
    pod, an empty one every pod of the namespace)."""
    selector = (budget.get("spec") or {}).get("selector")
    return isinstance(selector, dict) and match_label_selector_object(selector, labels)


def labelled(pod: Object) -> dict[str, str]:
    """The pod's labels."""
    labels: dict[str, str] = pod["metadata"].get("labels") or {}
    return labels


def is_healthy(pod: Object) -> bool:
    """Running, Ready and not terminating: what the disruption controller counts."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return status.get("phase") == "Running" and ready


def count_desired_healthy(spec: Object, expected: int) -> int:
    """``minAvailable``, or ``expected - maxUnavailable`` (percentages of ``expected`` rounded
    up, as upstream); neither set: no pod needs to stay."""
    if spec.get("minAvailable") is not None:
        return resolve_count(spec["minAvailable"], expected)
    if spec.get("maxUnavailable") is not None:
        return max(expected - resolve_count(spec["maxUnavailable"], expected), 0)
    return 0


def resolve_count(value: Any, expected: int) -> int:
    """An IntOrString: a count, or ``"N%"`` of ``expected`` rounded up; 400 otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(expected * int(text[:-1]) / 100)
    raise bad_request(f"invalid PodDisruptionBudget count {value!r}")
