"""Who a request comes from: bearer tokens the stand-in issued, then impersonation.

Pure but for the token table (a dict under a lock). Every credential is a bearer token issued by
the server (``Tokens.issue``); a ServiceAccount's user is
``system:serviceaccount:<namespace>:<name>`` in the groups a real server gives it. kubectl sends
no bearer token over plain HTTP but does send impersonation headers, so a kubeconfig written for
kubectl also carries its token as the impersonation extra ``amtd-token`` (``TOKEN_EXTRA``) and
impersonates its own user: the same credential, read from where kubectl can send it.
"""

from __future__ import annotations

import secrets
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .apierrors import ApiError

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
ANONYMOUS = "system:anonymous"
TOKEN_EXTRA = "amtd-token"
IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_EXTRA = "Impersonate-Extra-"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user: name, groups, extra (as a TokenReview reports them)."""

    name: str
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def is_master(self) -> bool:
        """Whether the user is in system:masters (allowed everything, as on a real server)."""
        return MASTERS in self.groups


@dataclass(frozen=True)
class Credential:
    """What a token stands for: its user, and the label the request log shows."""

    label: str
    user: UserInfo


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a ServiceAccount's token authenticates as."""
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED)
    return UserInfo(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}", groups)


def master_user(name: str) -> UserInfo:
    """An administrator: system:masters (the cluster-admin kubeconfig of a real cluster)."""
    return UserInfo(name, (MASTERS, AUTHENTICATED))


def impersonated_user(name: str, groups: tuple[str, ...]) -> UserInfo:
    """The user an impersonation asks for: a ServiceAccount given no groups gets its own, and
    everyone system:authenticated, as upstream's impersonation filter does."""
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and not groups:
        namespace = name[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")[0]
        groups = service_account_user(namespace, "").groups
    return UserInfo(name, groups if AUTHENTICATED in groups else (*groups, AUTHENTICATED))


class Tokens:
    """Issued tokens and what each stands for (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: dict[str, Credential] = {}

    def issue(self, credential: Credential) -> str:
        """A fresh random token for ``credential``."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._credentials[token] = credential
        return token

    def lookup(self, token: str) -> Credential | None:
        """What ``token`` stands for, or None when it was never issued."""
        with self._lock:
            return self._credentials.get(token)


def unauthorized() -> ApiError:
    """401 as the real server answers a missing or unknown token."""
    return ApiError(401, "Unauthorized", "Unauthorized")


class HeaderLines(Protocol):
    """Request headers as (name, value) lines, repeats kept (werkzeug's Headers is one)."""

    def items(self) -> Iterable[tuple[str, str]]:
        """Every header line."""
        ...


HeaderValues = Mapping[str, list[str]]  # lower-cased name -> values in order


def collect_headers(headers: HeaderLines) -> dict[str, list[str]]:
    """Header values by lower-cased name."""
    found: dict[str, list[str]] = {}
    for name, value in headers.items():
        found.setdefault(name.lower(), []).append(value.strip())
    return found


def first(headers: HeaderValues, name: str) -> str:
    """The first value of a header, "" when absent."""
    values = headers.get(name.lower())
    return values[0] if values else ""


def read_token(headers: HeaderValues) -> str:
    """The bearer token, else the token kubectl sends as an impersonation extra; "" if none."""
    scheme, _, token = first(headers, "Authorization").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return first(headers, f"{IMPERSONATE_EXTRA}{TOKEN_EXTRA}")


def read_impersonation(headers: HeaderValues) -> tuple[str, tuple[str, ...], dict[str, str]]:
    """(user, groups, extras but ours) the Impersonate-* headers ask for."""
    groups = tuple(value for value in headers.get(IMPERSONATE_GROUP.lower(), ()) if value)
    prefix = IMPERSONATE_EXTRA.lower()
    extras = {
        urllib.parse.unquote(name[len(prefix) :]): values[0]
        for name, values in headers.items()
        if name.startswith(prefix) and values
    }
    extras.pop(TOKEN_EXTRA, None)
    return first(headers, IMPERSONATE_USER), groups, extras


def is_self_impersonation(user: UserInfo, name: str, groups: tuple[str, ...]) -> bool:
    """Whether the headers only repeat the caller's own name (our kubeconfigs for kubectl)."""
    return name == user.name and not groups
