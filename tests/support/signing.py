"""The matcher's key for in-process tests: one fresh key pair per test session.

In-process functions get it as the local stack gives it to its processes: the private key as
``MATCHER_SIGNING_KEY`` (the matcher's), the public one as ``MATCHER_PUBLIC_KEYS`` (the
executors'), see :func:`support.standins.connect_functions` and
:func:`support.functions.serve_function`.
"""

from __future__ import annotations

import pytest

from amtd.act.verifying import PUBLIC_KEYS_ENV
from amtd.decide.signing import SIGNING_KEY_ENV
from amtd.model.signatures import export_private_pem, export_public_pem, generate_signing_key

MATCHER_KEY = generate_signing_key()


def matcher_key_environment() -> dict[str, str]:
    """The session's key pair as a function's environment holds it."""
    return {
        SIGNING_KEY_ENV: export_private_pem(MATCHER_KEY),
        PUBLIC_KEYS_ENV: export_public_pem(MATCHER_KEY),
    }


def give_matcher_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's key pair in the environment of in-process functions."""
    for name, value in matcher_key_environment().items():
        monkeypatch.setenv(name, value)
