"""Authenticating: the shared bearer token that ingest requests must present. Pure.

Secure by default (Phoenix's integrators had no auth): with no token configured and no explicit
opt-out, ingest refuses every request ("not configured") rather than running open. The token arrives
as ``Authorization: Bearer <token>``, or, for CloudEvents that crossed a Knative Broker (which does
not forward ``Authorization``), as the CloudEvent extension ``amtdtoken``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_ENV = "INGEST_TOKEN"
MODE_ENV = "AMTD_INGEST_AUTH"
DISABLED = "disabled"
TOKEN_EXTENSION = "amtdtoken"
# The value in knative/ingest-token-secret.yaml's template: public, so never a real token.
PLACEHOLDER_TOKENS = frozenset({"REPLACE-WITH-A-RANDOM-TOKEN"})


@dataclass(frozen=True)
class AuthSettings:
    """The expected token, or the explicit decision to run without one."""

    token: str = ""
    disabled: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        """Read ``INGEST_TOKEN`` and ``AMTD_INGEST_AUTH`` (only ``disabled`` turns auth off).

        The template's placeholder token counts as no token: it is published in the repository.
        """
        disabled = env.get(MODE_ENV, "").strip().lower() == DISABLED
        token = env.get(TOKEN_ENV, "").strip()
        return cls(token="" if token in PLACEHOLDER_TOKENS else token, disabled=disabled)

    @property
    def is_configured(self) -> bool:
        """A token is set, or auth was switched off on purpose."""
        return self.disabled or bool(self.token)


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
