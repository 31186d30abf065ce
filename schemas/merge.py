"""Merging media: concatenation, audio crossfades and muxing audio onto video."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import JobEvent, StrictModel
from schemas.errors import ErrorInfo
from schemas.ids import S3Key

MergeOperation = Literal["concat_video", "crossfade_audio", "mux"]
SyncMode = Literal["trim", "stretch", "compress"]


class MergeParams(StrictModel):
    """Knobs per operation; the ones that do not apply to it are ignored."""

    crossfade_ms: int = Field(default=0, ge=0, description="crossfade_audio only.")
    sync_mode: SyncMode = Field(
        default="trim", description="mux only: how audio is fitted to the video's length."
    )
    audio_key: S3Key | None = Field(default=None, description="mux only: the audio track.")


class MergeFields(StrictModel):
    """Payload shared by ``merge.requested`` and the public merge job spec.

    Operation-specific rules (how many inputs a mux takes, whether it has an
    audio track) are the merger's to enforce, so it can answer with a
    ``merge.failed`` carrying a specific code.
    """

    operation: MergeOperation
    inputs: list[S3Key] = Field(min_length=1)
    params: MergeParams = Field(default_factory=MergeParams)
    output_key: S3Key


class MergeRequested(MergeFields, JobEvent):
    """Inputs are in the bucket; combine them."""

    event_type: Literal["merge.requested"] = "merge.requested"
    schema_version: Literal[1] = 1


class MergeCompleted(JobEvent):
    """The merged output is in the bucket."""

    event_type: Literal["merge.completed"] = "merge.completed"
    schema_version: Literal[1] = 1
    s3_key: S3Key
    duration_ms: int = Field(ge=0)
    size_bytes: int = Field(ge=0)


class MergeFailed(JobEvent):
    """A merge gave up."""

    event_type: Literal["merge.failed"] = "merge.failed"
    schema_version: Literal[1] = 1
    error: ErrorInfo
