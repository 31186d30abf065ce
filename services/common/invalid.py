"""What can still be read of a request that failed validation: enough to tell its sender
(its id, tenant and correlation id), so a waiting caller hears "invalid" at once instead
of timing out. Each stage builds its own ``*.failed`` from it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from schemas import Event
from schemas.ids import is_plain_id
from services.common.codec import RawMessage


@dataclass(frozen=True)
class Envelope:
    subject_id: str  # the job or request id
    tenant_id: str
    body: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)  # correlation_id when readable


def readable_envelope(msg: RawMessage, model: type[Event], id_field: str) -> Envelope | None:
    """The envelope of ``msg`` when it claims to be ``model``'s event type and its id and
    tenant are plain ids; None otherwise (then only the dead letter tells)."""
    try:
        body: Any = json.loads(msg.value or b"")
    except (ValueError, RecursionError):
        # RecursionError: nested deeper than the parser goes; unreadable all the same.
        return None
    if (
        not isinstance(body, dict)
        or body.get("event_type") != model.model_fields["event_type"].default
    ):
        return None
    subject, tenant = body.get(id_field), body.get("tenant_id")
    if not (isinstance(subject, str) and isinstance(tenant, str)):
        return None
    if not (is_plain_id(subject) and is_plain_id(tenant)):
        return None
    extra = {}
    if isinstance(body.get("correlation_id"), str):
        extra["correlation_id"] = body["correlation_id"]
    return Envelope(subject, tenant, body, extra)
