"""A ``job.requested`` that fails validation still gets a ``job.failed`` when its envelope
can be read, so a producer writing to the topic hears why instead of waiting forever."""

from __future__ import annotations

from pydantic import ValidationError

from schemas import ErrorInfo, Event
from schemas.codes import Code
from schemas.job import JobFailed, JobRequested
from schemas.names import Producer
from services.common.codec import DecodeError, RawMessage
from services.common.invalid import readable_envelope

EVENT_TYPE = JobRequested.model_fields["event_type"].default


def answer_invalid_job_request(msg: RawMessage, exc: DecodeError) -> Event | None:
    envelope = readable_envelope(msg, JobRequested, "job_id")
    if envelope is None:
        return None
    spec = envelope.body.get("spec")
    kind = spec.get("job_kind") if isinstance(spec, dict) else None
    error = ErrorInfo(code=Code.INVALID_REQUEST, message=exc.reason, retryable=False, attempts=1)
    try:
        return JobFailed(job_id=envelope.subject_id, tenant_id=envelope.tenant_id,
                         producer=Producer.LIFECYCLE,
                         job_kind=kind if isinstance(kind, str) and kind else "unknown",
                         error=error, **envelope.extra)  # fmt: skip
    except ValidationError:
        return None
