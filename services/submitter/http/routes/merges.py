"""``/v1/merges``: the old video merger Lambda's contract (``input_videos``,
``output_key`` -> ``{s3_key, duration, size}``) over a ``concat_video`` merge job."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from schemas.codes import Code
from services.submitter.http.deps import RuntimeDep, Tenant
from services.submitter.http.errors import ApiError, bounded, from_failure
from services.submitter.http.job_models import JobStatus
from services.submitter.http.json_numbers import IntegralNumbersRoute
from services.submitter.http.models import (
    PLAIN_ID_SCHEMA,
    S3_KEY_DOT_SEGMENT,
    S3_KEY_PATTERN,
    ErrorResponse,
)
from services.submitter.legacy import (
    MERGE_OUTPUT_EXTS,
    MergeDone,
    MergePending,
    MergeRequestFailed,
    merge_status,
    merge_videos,
)
from services.submitter.requests import SubmitFailed
from services.submitter.waiter import TooManyPending

MAX_INPUTS = 50  # the merger's MERGE_MAX_INPUTS default
KEY_MAX = 1024
_KEY_RULES = (
    "a key in the bucket (or s3://<bucket>/<key> of this service's bucket) under "
    "ingest/<tenant>/ or media/<tenant>/ (403 forbidden_s3_key otherwise)"
)


def _ext_pattern() -> str:
    # Any case, as the merger reads the extension lower-cased.
    exts = "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)
        for ext in MERGE_OUTPUT_EXTS
    )
    return rf"\.({exts})$"


class MergeOut(BaseModel):
    """The old Lambda's answer (s3_key, duration, size) plus the job's id and details."""

    s3_key: str = Field(description="The merged object's key (the request's output_key).")
    duration: float = Field(description="Seconds (the old contract's unit).")
    size: int = Field(description="Bytes.")
    duration_ms: int
    size_bytes: int
    copied: bool = Field(description="True when the inputs were joined without re-encoding.")
    job_id: str
    url: str = Field(description="A presigned GET URL of the merged object.")


class MergePendingOut(BaseModel):
    job_id: str
    status: JobStatus
    status_url: str = Field(description="GET it for the merge's status and, once done, result.")


class MergeErrorOut(BaseModel):
    code: str
    message: str
    retryable: bool | None = None


class MergeStatusOut(BaseModel):
    job_id: str
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    s3_key: str | None = None
    duration: float | None = Field(None, description="Seconds, once done.")
    size: int | None = Field(None, description="Bytes, once done.")
    duration_ms: int | None = None
    size_bytes: int | None = None
    copied: bool | None = None
    url: str | None = Field(None, description="A presigned GET URL, once done.")
    error: MergeErrorOut | None = None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_MERGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": MergePendingOut,
        "description": "Not finished within MERGE_WAIT_TIMEOUT_S: poll status_url (also in "
        "the Location header); the merge goes on.",
    },
    401: _error("Missing, invalid or revoked API key."),
    403: _error(
        "A key outside the tenant's ingest or media prefix, or an s3:// URI of "
        "another bucket (forbidden_s3_key)."
    ),
    404: _error("An input has no object (input_missing)."),
    422: _error(
        "A field breaks its rule (invalid_request, invalid_s3_key), or the merger "
        "refused the inputs (input_not_media, input_no_video, input_too_long, "
        "too_many_inputs, invalid_merge_request): those depend on the stored "
        "objects, so a request the schema allows can still get them."
    ),
    429: _error("Over the tenant's job rate (rate_limited); see Retry-After."),
    500: _error("The merger failed on our side (its code, e.g. internal_error)."),
    502: _error("A stored input could not be used (source_unreadable, ffmpeg_failed, ...)."),
    503: _error(
        "A backing service is unavailable or the API is overloaded (unavailable, "
        "submit_failed, overloaded); retry."
    ),
}
_STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, invalid or revoked API key."),
    404: _error("No such merge for this tenant (job_not_found)."),
    503: _error("A backing service is unavailable; retry."),
}
# Declared by hand, not as a FastAPI parameter, which would add a 422 this route never
# answers: any other id is one no merge has (404).
_JOB_ID_PARAMETER: dict[str, Any] = {
    "parameters": [
        {
            "name": "job_id",
            "in": "path",
            "required": True,
            "description": "The job_id a merge answer gave.",
            "schema": {**PLAIN_ID_SCHEMA, "examples": ["job-0123456789abcdef0123456789abcdef"]},
        }
    ]
}


_KEY_RE = re.compile(S3_KEY_PATTERN)
_DOT_SEGMENT_RE = re.compile(S3_KEY_DOT_SEGMENT)
# S3_KEY_PATTERN and the extension in one pattern, which a generator can follow directly.
OUTPUT_KEY_PATTERN = S3_KEY_PATTERN.removesuffix("*$") + "*" + _ext_pattern()
_OUTPUT_RE = re.compile(OUTPUT_KEY_PATTERN)


def _bad_key(message: str) -> PydanticCustomError:
    # Its own error type, not value_error: a rule of one field, not one between fields.
    return PydanticCustomError("invalid_s3_key", message)


def _checked_key(value: str) -> str:
    if not _KEY_RE.fullmatch(value):
        raise _bad_key("a key is relative, without backslashes or control characters")
    if _DOT_SEGMENT_RE.search(value):
        raise _bad_key("a key has no '.' or '..' segments")
    return value


def _checked_output(value: str) -> str:
    if not _OUTPUT_RE.search(_checked_key(value)):
        exts = ", ".join(f".{e}" for e in MERGE_OUTPUT_EXTS)
        raise _bad_key(f"output_key must end in one of {exts}")
    return value


_KEY_SCHEMA = {"pattern": S3_KEY_PATTERN, "not": {"pattern": S3_KEY_DOT_SEGMENT}}
InputKey = Annotated[
    str,
    Field(min_length=1, max_length=KEY_MAX, json_schema_extra=_KEY_SCHEMA),
    AfterValidator(_checked_key),
]
OutputKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=KEY_MAX,
        json_schema_extra={
            "pattern": OUTPUT_KEY_PATTERN,
            "not": {"pattern": S3_KEY_DOT_SEGMENT},
        },
    ),
    AfterValidator(_checked_output),
]


class MergeRequest(BaseModel):
    """The old Lambda's event."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input_videos: list[InputKey] = Field(
        min_length=1,
        max_length=MAX_INPUTS,
        description=f"The videos to join, in order: each {_KEY_RULES}.",
        examples=[["ingest/acme/part-1.mp4", "ingest/acme/part-2.mp4"]],
    )
    output_key: OutputKey = Field(
        description=f"Where the joined video goes: {_KEY_RULES}, ending in "
        + ", ".join(f".{e}" for e in MERGE_OUTPUT_EXTS)
        + " (any case).",
        examples=["ingest/acme/joined.mp4"],
    )
    output_bucket: str | None = Field(
        None,
        max_length=255,
        description="The old Lambda's output bucket: Tapedeck writes to its own, so any "
        "other name is refused (403 forbidden_s3_key).",
    )


# IntegralNumbersRoute: a body that is not UTF-8 is malformed JSON (422), not a bare 400.
router = APIRouter(prefix="/v1/merges", tags=["merges"], route_class=IntegralNumbersRoute)


@router.post(
    "",
    response_model=MergeOut,
    responses=_MERGE_RESPONSES,
    summary="Join videos end to end (the old video merger's contract)",
)
async def merge(
    request: Request,
    tenant: Tenant,
    runtime: RuntimeDep,
    body: Annotated[MergeRequest, Body()],
) -> MergeOut | JSONResponse:
    """Joins ``input_videos`` into ``output_key``: by stream copy when they match, else
    normalised once. Answers 200 with ``{s3_key, duration, size}`` when the merge ends
    within MERGE_WAIT_TIMEOUT_S, else 202 with the job to poll."""
    ports = runtime.merge_ports()
    if body.output_bucket is not None and body.output_bucket != ports.bucket:
        raise ApiError(
            Code.FORBIDDEN_S3_KEY,
            "output_bucket: Tapedeck writes to its own bucket",
            param="output_bucket",
        )
    try:
        outcome = await merge_videos(ports, tenant, body.input_videos, body.output_key)
    except MergeRequestFailed as exc:
        raise from_failure(exc.job_id, exc.error) from None
    except SubmitFailed as exc:
        raise ApiError(
            Code.SUBMIT_FAILED,
            "the merge could not be queued; try again",
            request_id=exc.job_id,
            retryable=True,
        ) from None
    except TooManyPending:
        raise ApiError(
            Code.OVERLOADED, "too many requests in flight; try again", retryable=True
        ) from None
    if isinstance(outcome, MergePending):
        url = str(request.url_for("merge_status", job_id=outcome.job_id))
        pending = MergePendingOut(job_id=outcome.job_id, status="PENDING", status_url=url)
        return JSONResponse(pending.model_dump(), status_code=202, headers={"Location": url})
    return await _merge_out(runtime, outcome)


@router.get(
    "/{job_id}",
    name="merge_status",
    response_model=MergeStatusOut,
    response_model_exclude_none=True,
    responses=_STATUS_RESPONSES,
    openapi_extra=_JOB_ID_PARAMETER,
    summary="Status of a merge, and its result once done",
)
async def status(request: Request, tenant: Tenant, runtime: RuntimeDep) -> MergeStatusOut:
    job_id: str = request.path_params["job_id"]
    found = await merge_status(runtime.jobs, tenant, job_id)
    out = MergeStatusOut(
        job_id=found.job_id,
        status=found.status,
        progress=found.progress,
    )
    if found.done is not None:
        done = await _merge_out(runtime, found.done)
        out = out.model_copy(update=done.model_dump(exclude={"job_id"}))
    if found.error is not None:
        error = MergeErrorOut(
            code=found.error.code,
            message=bounded(found.error.message),
            retryable=found.error.retryable,
        )
        out = out.model_copy(update={"error": error})
    return out


async def _merge_out(runtime: RuntimeDep, done: MergeDone) -> MergeOut:
    url = await runtime.media.presign_get(done.s3_key, runtime.settings.job_url_expiry_s)
    return MergeOut(
        s3_key=done.s3_key,
        duration=round(done.duration_ms / 1000, 3),
        size=done.size_bytes,
        duration_ms=done.duration_ms,
        size_bytes=done.size_bytes,
        copied=done.copied,
        job_id=done.job_id,
        url=url,
    )
