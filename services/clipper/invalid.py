"""A clip request that fails validation still gets a ``clip.failed`` answer when its
envelope can be read, with the same codes the HTTP API uses."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipRequested
from schemas.codes import CLIP_PARAM_CODES, Code
from schemas.ids import is_plain_id
from schemas.names import Producer
from services.common.codec import DecodeError, RawMessage


def _code(exc: DecodeError) -> str:
    if isinstance(exc.cause, ValidationError):
        for err in exc.cause.errors():
            if err["loc"] and str(err["loc"][0]) in CLIP_PARAM_CODES:
                return CLIP_PARAM_CODES[str(err["loc"][0])]
    return Code.INVALID_REQUEST


def answer_invalid_clip_request(msg: RawMessage, exc: DecodeError) -> Event | None:
    try:
        body: Any = json.loads(msg.value or b"")
    except ValueError:
        return None
    if (
        not isinstance(body, dict)
        or body.get("event_type") != ClipRequested.model_fields["event_type"].default
    ):
        return None
    request_id, tenant_id = body.get("request_id"), body.get("tenant_id")
    if not (isinstance(request_id, str) and isinstance(tenant_id, str)):
        return None
    if not (is_plain_id(request_id) and is_plain_id(tenant_id)):
        return None
    episode_id = body.get("episode_id")
    extra = {}
    if isinstance(body.get("correlation_id"), str):
        extra["correlation_id"] = body["correlation_id"]
    try:
        return ClipFailed(
            request_id=request_id,
            tenant_id=tenant_id,
            producer=Producer.CLIPPER,
            episode_id=episode_id[:512] if isinstance(episode_id, str) else repr(episode_id)[:512],
            error=ErrorInfo(code=_code(exc), message=exc.reason, retryable=False, attempts=1),
            **extra,
        )
    except ValidationError:
        return None
