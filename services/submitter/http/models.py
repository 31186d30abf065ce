"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.clip import ClipFormat
from schemas.ids import S3Key


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

    s3_key: S3Key = Field(description="Key of an object already in the media bucket.")
    episode_id: str | None = Field(None, description="Defaults to a generated ep-<hex> id.")


class RegisterUploadForm(BaseModel):
    """Documents the multipart form; the body itself is streamed, not parsed by this."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
    episode_id: str | None = None


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
