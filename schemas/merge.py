"""Merging media: concatenation, audio crossfades and muxing audio onto video."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import JobEvent, StrictModel
from schemas.errors import ErrorInfo
from schemas.ids import PlainId, S3Key

MergeOperation = Literal["concat_video", "crossfade_audio", "mux"]
SyncMode = Literal["trim", "stretch", "compress"]
FadeMode = Literal["crossfade", "fade"]
# ffmpeg's acrossfade/afade curve names.
FadeCurve = Literal[
    "tri", "qsin", "esin", "hsin", "log", "ipar", "qua", "cub", "squ", "cbr", "par", "exp",
    "iqsin", "ihsin", "dese", "desi", "losi", "sinc", "isinc",
]  # fmt: skip


class Loudness(StrictModel):
    """A two-pass EBU R128 normalisation target (ffmpeg ``loudnorm``)."""

    integrated_lufs: float = Field(default=-16.0, ge=-40, le=-5, allow_inf_nan=False)
    true_peak_dbtp: float = Field(default=-1.5, ge=-9, le=0, allow_inf_nan=False)
    lra: float = Field(default=11.0, ge=1, le=50, allow_inf_nan=False, description="LU.")


class MergeParams(StrictModel):
    """Knobs per operation; the ones that do not apply to it are ignored."""

    crossfade_ms: int = Field(
        default=0,
        ge=0,
        description="crossfade_audio only; the fade length in ms. Superseded by "
        "fade_duration_s, and read only when that is not given.",
    )
    sync_mode: SyncMode = Field(
        default="trim", description="mux only: how audio is fitted to the video's length."
    )
    audio_key: S3Key | None = Field(default=None, description="mux only: the audio track.")
    fade_duration_s: float = Field(
        default=1.0,
        ge=0,
        le=30,
        allow_inf_nan=False,
        description="crossfade_audio only: the fade at each join, shortened where a segment "
        "is shorter than twice the fade.",
    )
    curve: FadeCurve = Field(default="tri", description="crossfade_audio only: the fade curve.")
    fade_mode: FadeMode = Field(
        default="crossfade",
        description="crossfade_audio only: 'crossfade' overlaps the segments at each join; "
        "'fade' fades each segment out and the next one in, then joins them end to end.",
    )
    loudness: Loudness | None = Field(
        default=None,
        description="mux and crossfade_audio: normalise the audio to this target; null: off.",
    )
    voiceover_key: S3Key | None = Field(
        default=None,
        description="mux only: a voice track; the soundtrack is ducked under it and mixed.",
    )


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
    step: PlainId | None = Field(
        default=None,
        description="The requester's name for this merge within the job (e.g. 'concat', "
        "'soundtrack', 'mux'); echoed in the outcome.",
    )


class MergeCompleted(JobEvent):
    """The merged output is in the bucket."""

    event_type: Literal["merge.completed"] = "merge.completed"
    schema_version: Literal[1] = 1
    s3_key: S3Key
    duration_ms: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    operation: MergeOperation | None = None
    step: PlainId | None = None
    copied: bool = Field(
        default=False, description="True when the video (or the whole input) was stream-copied."
    )


class MergeFailed(JobEvent):
    """A merge gave up."""

    event_type: Literal["merge.failed"] = "merge.failed"
    schema_version: Literal[1] = 1
    error: ErrorInfo
    operation: MergeOperation | None = None
    step: PlainId | None = None
