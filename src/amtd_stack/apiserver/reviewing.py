"""What may I do, who am I: SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview.

The create-only review resources ``kubectl auth can-i`` (``--list``) and ``kubectl auth whoami``
post; each answer is the posted object with its status filled in, never stored (pure).
"""

from __future__ import annotations

from typing import Any

from amtd.model.objects import Object

from .apierrors import bad_request
from .authenticating import UserInfo
from .authorizing import Attributes, RbacIndex, Rule, decide, rules_in
from .resources import ResourceType

AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
ACCESS_REVIEWS = "selfsubjectaccessreviews"
RULES_REVIEWS = "selfsubjectrulesreviews"
USER_REVIEWS = "selfsubjectreviews"
REVIEW_TYPES = (
    ResourceType(AUTHORIZATION, "v1", ACCESS_REVIEWS, "SelfSubjectAccessReview", False),
    ResourceType(AUTHORIZATION, "v1", RULES_REVIEWS, "SelfSubjectRulesReview", False),
    ResourceType(AUTHENTICATION, "v1", USER_REVIEWS, "SelfSubjectReview", False),
)
REVIEW_KINDS = frozenset(t.kind for t in REVIEW_TYPES)


def is_review(rtype: ResourceType) -> bool:
    """Whether the type is one of the create-only reviews answered here."""
    return rtype.kind in REVIEW_KINDS and rtype.group in (AUTHORIZATION, AUTHENTICATION)


def answer_review(rtype: ResourceType, body: Any, user: UserInfo, index: RbacIndex) -> Object:
    """The review with its status; 400 when its spec is not an object."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request("spec must be a JSON object")
    answered: Object = {**body, "apiVersion": rtype.api_version, "kind": rtype.kind}
    answered.setdefault("metadata", {"creationTimestamp": None})
    if rtype.plural == USER_REVIEWS:
        answered["status"] = {"userInfo": user_info(user)}
    elif rtype.plural == RULES_REVIEWS:
        answered["status"] = rules_status(rules_in(index, user, str(spec.get("namespace", ""))))
    else:
        allowed, reason = decide(index, access_attributes(spec, user))
        answered["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
    return answered


def user_info(user: UserInfo) -> Object:
    """A UserInfo as a TokenReview or SelfSubjectReview reports it."""
    info: Object = {"username": user.name, "groups": list(user.groups)}
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra.items()}
    return info


def access_attributes(spec: Object, user: UserInfo) -> Attributes:
    """The request a SelfSubjectAccessReview asks about; 400 when it names none."""
    resource, path = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(resource, dict):
        return Attributes(
            user, str(resource.get("verb", "")), str(resource.get("group", "")),
            str(resource.get("resource", "")), str(resource.get("subresource", "")),
            str(resource.get("namespace", "")), str(resource.get("name", "")),
        )  # fmt: skip
    if isinstance(path, dict):
        verb, url = str(path.get("verb", "")), str(path.get("path", ""))
        return Attributes(user, verb, path=url, resource_request=False)
    raise bad_request("spec: exactly one of resourceAttributes or nonResourceAttributes")


def rules_status(rules: list[Rule]) -> Object:
    """A SelfSubjectRulesReview status from the rules that apply."""
    resource_rules = [
        {"verbs": sorted(r.verbs), "apiGroups": sorted(r.groups), "resources": sorted(r.resources),
         **({"resourceNames": sorted(r.names)} if r.names else {})}
        for r in rules if not r.urls
    ]  # fmt: skip
    url_rules = [
        {"verbs": sorted(r.verbs), "nonResourceURLs": list(r.urls)} for r in rules if r.urls
    ]
    return {"resourceRules": resource_rules, "nonResourceRules": url_rules, "incomplete": False}
