"""Video generation: job submission and its result."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import JobEvent
from schemas.ids import NonEmptyStr, S3Key

ParamValue = str | int | float | bool


class VideoJobSubmitted(JobEvent):
    """A video job for the video renderer."""

    event_type: Literal["video.job.submitted"] = "video.job.submitted"
    schema_version: Literal[1] = 1
    prompt: NonEmptyStr
    duration_s: float = Field(gt=0, allow_inf_nan=False)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Provider-specific knobs, passed through."
    )


class VideoRendered(JobEvent):
    """A video job's output is in the bucket."""

    event_type: Literal["video.rendered"] = "video.rendered"
    schema_version: Literal[1] = 1
    s3_key: S3Key
    duration_s: float = Field(gt=0, allow_inf_nan=False)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    codec: NonEmptyStr
