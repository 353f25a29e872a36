"""Credentials: how often the client's configuration re-applies them (pure)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

REFRESH_INTERVAL_S = 1.0  # how often credentials are re-applied (the loaders: every request)


class ThrottledRefresh:
    """The config loader's credential refresh hook, run at most once per ``interval_s``.

    The loaders re-apply the whole configuration before every request (host, and proxy settings
    read from the environment: ~40 µs a call); the tokens they refresh last far longer (in a
    pod re-read every minute, from a kubeconfig on expiry), so once a second is plenty.
    """

    def __init__(self, hook: Callable[[Any], None], interval_s: float = REFRESH_INTERVAL_S):
        self.hook = hook
        self.interval_s = interval_s
        self.refreshed_at = -math.inf

    def __call__(self, configuration: Any) -> None:
        """Refresh if due; the loader's hook re-installs itself, so this one is put back."""
        now = time.monotonic()
        if now - self.refreshed_at < self.interval_s:
            return
        self.refreshed_at = now
        self.hook(configuration)
        installed = configuration.refresh_api_key_hook
        if installed is not self and installed is not None:
            self.hook = installed
        configuration.refresh_api_key_hook = self
