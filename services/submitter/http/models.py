"""Request and response bodies of the HTTP API, and the id parameters it shares.

The schemas here state the rules the API enforces (patterns, lengths, bounds), so its
OpenAPI document says exactly which requests it accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from schemas.clip import ClipFormat
from schemas.ids import PlainId, S3Key
from services.submitter.http.errors import bounded

PLAIN_ID_MAX = 128
# A ``PlainId`` whose schema also states its length, which the pattern implies.
BoundedPlainId = Annotated[PlainId, Field(min_length=1, max_length=PLAIN_ID_MAX)]
# Its JSON Schema, for ids a route documents but checks itself.
PLAIN_ID_SCHEMA: dict[str, Any] = TypeAdapter(BoundedPlainId).json_schema()

EpisodeIdPath = Annotated[
    BoundedPlainId,
    Path(
        examples=["ep-1"],
        description="1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, "
        "without '..'. Any other id is refused with 422 invalid_episode_id.",
    ),
]

# What ``MediaStore`` takes as a key, on top of ``S3Key``: relative, no backslash, no
# control character (C0 or C1), no '.' or '..' segment.
S3_KEY_PATTERN = r"^[^/\\\x00-\x1f\x7f-\x9f][^\\\x00-\x1f\x7f-\x9f]*$"
S3_KEY_DOT_SEGMENT = r"(^|/)\.\.?(/|$)"


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. invalid_time.")
    message: str
    param: str | None = Field(None, description="The request parameter at fault, if one is.")
    request_id: str | None = None
    retryable: bool | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class RegisterS3Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_key: S3Key = Field(
        description="Key of an object already in the media bucket, under ingest/<tenant>/ "
        "(403 forbidden_s3_key otherwise). Relative, without '.' or '..' segments, "
        "backslashes or control characters.",
        json_schema_extra={"pattern": S3_KEY_PATTERN, "not": {"pattern": S3_KEY_DOT_SEGMENT}},
        examples=["ingest/acme/show.mp3"],
    )
    episode_id: BoundedPlainId | None = Field(
        None, description="Defaults to a generated ep-<hex> id.", examples=["ep-show"]
    )


class RegisterUploadForm(BaseModel):
    """Documents the multipart form; the body itself is streamed, not parsed by this."""

    file: bytes = Field(
        description="The audio file: 422 not_audio for anything ffprobe cannot read as audio "
        "or that holds a video stream.",
        json_schema_extra={"format": "binary"},
    )
    episode_id: BoundedPlainId | Literal[""] = Field(
        "", description="Empty or absent: a generated ep-<hex> id."
    )


class EpisodeOut(BaseModel):
    episode_id: str
    tenant_id: str
    s3_key: str
    duration_ms: int
    format_name: str
    codec: str
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None
    size_bytes: int
    seek_indexed: bool
    registered_at: datetime


class ClipOut(BaseModel):
    """The old Lambda contract (clip_url, cache_hit, generation_time_ms) plus details."""

    clip_url: str
    cache_hit: bool
    generation_time_ms: int
    s3_key: str
    size_bytes: int
    start_ms: int
    end_ms: int
    format: ClipFormat
    expires_at: datetime
    request_id: str | None = Field(None, description="Set when the clip was cut for this call.")


class ClipPendingOut(BaseModel):
    request_id: str
    status: Literal["pending"] = "pending"
    status_url: str


class ClipErrorOut(BaseModel):
    code: str
    message: str
    retryable: bool | None = None

    @field_validator("message")
    @classmethod
    def _bounded(cls, message: str) -> str:
        # Written by a stage, which may quote the request: bounded like every error.
        return bounded(message)


class ClipStatusOut(BaseModel):
    request_id: str
    status: Literal["pending", "running", "completed", "failed"]
    episode_id: str | None = None
    clip_url: str | None = None
    cache_hit: bool | None = None
    generation_time_ms: int | None = None
    s3_key: str | None = None
    size_bytes: int | None = None
    expires_at: datetime | None = None
    error: ClipErrorOut | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]
