"""Authenticating: the shared bearer token that ingest requests must present. Pure.

Secure by default (Phoenix's integrators had no auth): with no token configured and no explicit
opt-out, ingest refuses every request ("not configured") rather than running open. The token arrives
as ``Authorization: Bearer <token>``, or, for CloudEvents that crossed a Knative Broker (which does
not forward ``Authorization``), as the CloudEvent extension ``amtdtoken``. Senders that can set
no header at all (Falco's own ``http_output``) may present a second, separate token as the path
``/t/<token>`` when ``INGEST_PATH_TOKEN`` is set: a URL ends up in configuration and maybe in
proxies' logs, so it is never the bearer token, and off unless configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_ENV = "INGEST_TOKEN"
MODE_ENV = "AMTD_INGEST_AUTH"
DISABLED = "disabled"
TOKEN_EXTENSION = "amtdtoken"
PATH_TOKEN_ENV = "INGEST_PATH_TOKEN"
PATH_TOKEN_PREFIX = "/t/"
# The value in knative/ingest-token-secret.yaml's template: public, so never a real token.
PLACEHOLDER_TOKENS = frozenset({"REPLACE-WITH-A-RANDOM-TOKEN"})


@dataclass(frozen=True)
class AuthSettings:
    """The expected token, or the explicit decision to run without one."""

    token: str = ""
    disabled: bool = False
    path_token: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        """Read ``INGEST_TOKEN``, ``INGEST_PATH_TOKEN`` and ``AMTD_INGEST_AUTH`` (only
        ``disabled`` turns auth off).

        The template's placeholder token counts as no token: it is published in the repository.
        """
        disabled = env.get(MODE_ENV, "").strip().lower() == DISABLED
        token, path_token = (env.get(name, "").strip() for name in (TOKEN_ENV, PATH_TOKEN_ENV))
        return cls(
            token="" if token in PLACEHOLDER_TOKENS else token, disabled=disabled,
            path_token="" if path_token in PLACEHOLDER_TOKENS else path_token,
        )  # fmt: skip

    @property
    def is_configured(self) -> bool:
        """A token is set, or auth was switched off on purpose."""
        return self.disabled or bool(self.token) or bool(self.path_token)


def read_bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""  # present but not a bearer token: wrong, not missing
    return token.strip()


def choose_presented_token(authorization: str | None, extension: str | None) -> str | None:
    """The header wins when present; the CloudEvent extension is the fallback."""
    from_header = read_bearer_token(authorization)
    return from_header if from_header is not None else extension


def is_token_valid(settings: AuthSettings, presented: str | None) -> bool:
    """Constant-time comparison with the configured token; never true without one."""
    if not settings.token or presented is None:
        return False
    expected = settings.token.encode("utf-8")
    return hmac.compare_digest(expected, presented.encode("utf-8", errors="replace"))


def read_path_token(path: str) -> str | None:
    """The token of a ``/t/<token>`` request path; None for any other path."""
    if not path.startswith(PATH_TOKEN_PREFIX):
        return None
    return path.removeprefix(PATH_TOKEN_PREFIX)


def is_path_token_valid(settings: AuthSettings, presented: str) -> bool:
    """Constant-time comparison with the configured path token; never true without one."""
    if not settings.path_token:
        return False
    expected = settings.path_token.encode("utf-8")
    return hmac.compare_digest(expected, presented.encode("utf-8", errors="replace"))
