"""SecurityEvent readers: the ref and the status of a SecurityEvent as the API returned it. Pure.

The matcher and the sweeper read SecurityEvents the same way, so an unreadable status means the
same to both (empty: it is rewritten when decided).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from amtd.model.actionevents import SecurityEventRef
from amtd.model.objects import Object
from amtd.model.securityevents import SecurityEventStatus

logger = logging.getLogger(__name__)


def read_ref(obj: Object) -> SecurityEventRef:
    """Name, uid and spec generation of a SecurityEvent as read from the API."""
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    return SecurityEventRef(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=generation if isinstance(generation, int) else 0,
    )


def read_status(obj: Object) -> SecurityEventStatus:
    """The recorded status; an unreadable one counts as empty (it is rewritten when decided)."""
    try:
        return SecurityEventStatus.model_validate(obj.get("status") or {})
    except ValidationError as error:
        logger.warning("ignoring unreadable status: %s", summarize_validation_error(error))
        return SecurityEventStatus()


def summarize_validation_error(error: ValidationError) -> str:
    """The first problem of a pydantic error, as ``field.path: message``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    return f"{where}: {first['msg']}"
