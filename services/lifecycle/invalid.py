"""A ``job.requested`` that fails validation still gets a ``job.failed`` when its envelope
can be read, so a producer writing to the topic hears why instead of waiting forever."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from schemas import ErrorInfo, Event
from schemas.codes import Code
from schemas.ids import is_plain_id
from schemas.job import JobFailed, JobRequested
from schemas.names import Producer
from services.common.codec import DecodeError, RawMessage

EVENT_TYPE = JobRequested.model_fields["event_type"].default


def answer_invalid_job_request(msg: RawMessage, exc: DecodeError) -> Event | None:
    try:
        body: Any = json.loads(msg.value or b"")
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("event_type") != EVENT_TYPE:
        return None
    job_id, tenant_id = body.get("job_id"), body.get("tenant_id")
    if not (isinstance(job_id, str) and isinstance(tenant_id, str)):
        return None
    if not (is_plain_id(job_id) and is_plain_id(tenant_id)):
        return None
    spec = body.get("spec")
    kind = spec.get("job_kind") if isinstance(spec, dict) else None
    extra = {}
    if isinstance(body.get("correlation_id"), str):
        extra["correlation_id"] = body["correlation_id"]
    error = ErrorInfo(code=Code.INVALID_REQUEST, message=exc.reason, retryable=False, attempts=1)
    try:
        return JobFailed(job_id=job_id, tenant_id=tenant_id, producer=Producer.LIFECYCLE,
                         job_kind=kind if isinstance(kind, str) and kind else "unknown",
                         error=error, **extra)  # fmt: skip
    except ValidationError:
        return None
