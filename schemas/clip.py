"""On-demand clips cut from an episode's audio."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from schemas.envelope import RequestEvent, StrictModel, UtcDatetime
from schemas.errors import ErrorInfo
from schemas.ids import PlainId, S3Key

ClipFormat = Literal["mp3", "m4a", "wav"]
# Positions are bounded in shape only (the clipper answers "past the end" itself): the
# largest integer every JSON reader keeps exact, well inside MongoDB's 64-bit integers.
MAX_MS = 2**53 - 1


class ClipFields(StrictModel):
    """Payload shared by ``clip.requested`` and the public clip job spec.

    Only shape is checked here. Business limits (longest clip, start past the
    end of the episode) belong to the clipper, which answers them with a
    ``clip.failed`` carrying a specific code instead of a dead letter.
    """

    episode_id: PlainId
    start_ms: int = Field(ge=0, le=MAX_MS)
    duration_ms: int = Field(gt=0, le=MAX_MS)
    format: ClipFormat = "mp3"
    accurate: bool = Field(
        default=False, description="Re-encode for sample-accurate cuts instead of stream copy."
    )


class ClipRequested(ClipFields, RequestEvent):
    """Someone asked for a clip."""

    event_type: Literal["clip.requested"] = "clip.requested"
    schema_version: Literal[1] = 1


class ClipReady(RequestEvent):
    """The clip exists and can be downloaded until ``expires_at``."""

    event_type: Literal["clip.ready"] = "clip.ready"
    schema_version: Literal[1] = 1
    episode_id: PlainId
    s3_key: S3Key
    clip_url: str = Field(pattern=r"^https?://\S+$", max_length=4096)
    cache_hit: bool
    generation_time_ms: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    start_ms: int = Field(ge=0)
    end_ms: int = Field(gt=0)
    format: ClipFormat
    expires_at: UtcDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end_ms <= self.start_ms:
            raise ValueError("end_ms must be after start_ms")
        return self


class ClipFailed(RequestEvent):
    """A clip request could not be served."""

    event_type: Literal["clip.failed"] = "clip.failed"
    schema_version: Literal[1] = 1
    # Deliberately not a PlainId: rejecting a bad episode id is one of the
    # reasons this event exists, and it has to be able to echo that id back.
    episode_id: str = Field(max_length=512)
    error: ErrorInfo
