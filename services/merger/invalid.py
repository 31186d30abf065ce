"""A merge request that fails validation still gets a ``merge.failed`` answer when its
envelope can be read, so the job waiting on it hears "invalid" instead of nothing."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from schemas import ErrorInfo, Event
from schemas.codes import Code
from schemas.ids import is_plain_id
from schemas.merge import MergeFailed, MergeRequested
from schemas.names import Producer
from services.common.codec import DecodeError, RawMessage


def answer_invalid_merge_request(msg: RawMessage, exc: DecodeError) -> Event | None:
    try:
        body: Any = json.loads(msg.value or b"")
    except ValueError:
        return None
    if (
        not isinstance(body, dict)
        or body.get("event_type") != MergeRequested.model_fields["event_type"].default
    ):
        return None
    job_id, tenant_id = body.get("job_id"), body.get("tenant_id")
    if not (isinstance(job_id, str) and isinstance(tenant_id, str)):
        return None
    if not (is_plain_id(job_id) and is_plain_id(tenant_id)):
        return None
    extra: dict[str, Any] = {}
    if isinstance(body.get("correlation_id"), str):
        extra["correlation_id"] = body["correlation_id"]
    if is_plain_id(body.get("step")):
        extra["step"] = body["step"]
    if body.get("operation") in ("concat_video", "crossfade_audio", "mux"):
        extra["operation"] = body["operation"]
    error = ErrorInfo(code=Code.INVALID_MERGE_REQUEST, message=exc.reason, retryable=False,
                      attempts=1)  # fmt: skip
    try:
        return MergeFailed(job_id=job_id, tenant_id=tenant_id, producer=Producer.MERGER,
                           error=error, **extra)  # fmt: skip
    except ValidationError:
        return None
