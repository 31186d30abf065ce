"""A merge request that fails validation still gets a ``merge.failed`` answer when its
envelope can be read, so the job waiting on it hears "invalid" instead of nothing."""

from __future__ import annotations

from pydantic import ValidationError

from schemas import ErrorInfo, Event
from schemas.codes import Code
from schemas.ids import is_plain_id
from schemas.merge import MergeFailed, MergeRequested
from schemas.names import Producer
from services.common.codec import DecodeError, RawMessage
from services.common.invalid import readable_envelope


def answer_invalid_merge_request(msg: RawMessage, exc: DecodeError) -> Event | None:
    envelope = readable_envelope(msg, MergeRequested, "job_id")
    if envelope is None:
        return None
    body, extra = envelope.body, dict(envelope.extra)
    if is_plain_id(body.get("step")):
        extra["step"] = body["step"]
    if body.get("operation") in ("concat_video", "crossfade_audio", "mux"):
        extra["operation"] = body["operation"]
    error = ErrorInfo(code=Code.INVALID_MERGE_REQUEST, message=exc.reason, retryable=False,
                      attempts=1)  # fmt: skip
    try:
        return MergeFailed(job_id=envelope.subject_id, tenant_id=envelope.tenant_id,
                           producer=Producer.MERGER, error=error, **extra)  # fmt: skip
    except ValidationError:
        return None
