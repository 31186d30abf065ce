"""A clip request that fails validation still gets a ``clip.failed`` answer when its
envelope can be read, with the same codes the HTTP API uses."""

from __future__ import annotations

from pydantic import ValidationError

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipRequested
from schemas.codes import CLIP_PARAM_CODES, Code
from schemas.names import Producer
from services.common.codec import DecodeError, RawMessage
from services.common.invalid import readable_envelope


def _code(exc: DecodeError) -> str:
    if isinstance(exc.cause, ValidationError):
        for err in exc.cause.errors():
            if err["loc"] and str(err["loc"][0]) in CLIP_PARAM_CODES:
                return CLIP_PARAM_CODES[str(err["loc"][0])]
    return Code.INVALID_REQUEST


def answer_invalid_clip_request(msg: RawMessage, exc: DecodeError) -> Event | None:
    envelope = readable_envelope(msg, ClipRequested, "request_id")
    if envelope is None:
        return None
    episode_id = envelope.body.get("episode_id")
    try:
        return ClipFailed(
            request_id=envelope.subject_id,
            tenant_id=envelope.tenant_id,
            producer=Producer.CLIPPER,
            episode_id=episode_id[:512] if isinstance(episode_id, str) else repr(episode_id)[:512],
            error=ErrorInfo(code=_code(exc), message=exc.reason, retryable=False, attempts=1),
            **envelope.extra,
        )
    except ValidationError:
        return None
