"""Merger settings: the shared ones plus the merge limits and how hard one process works."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class MergerSettings(Settings):
    merger_concurrency: int = Field(2, alias="MERGER_CONCURRENCY", ge=1, le=32)
    merger_web_port: int | None = Field(None, alias="MERGER_WEB_PORT")
    merge_max_inputs: int = Field(50, alias="MERGE_MAX_INPUTS", ge=1, le=1000)
    # Of each input (its picture for videos, its sound for audio).
    merge_max_duration_s: float = Field(3600.0, alias="MERGE_MAX_DURATION_S", gt=0)
    # One ffmpeg run may take max(MERGE_TIMEOUT_MIN_S, MERGE_TIMEOUT_FACTOR x media length).
    merge_timeout_factor: float = Field(3.0, alias="MERGE_TIMEOUT_FACTOR", gt=0)
    merge_timeout_min_s: float = Field(60.0, alias="MERGE_TIMEOUT_MIN_S", gt=0)
    # A whole merge, retries included.
    merge_deadline_s: float = Field(3 * 3600.0, alias="MERGE_DEADLINE_S", gt=0)
    # Empty: the first of libx264, libopenh264, mpeg4 that ffmpeg has.
    merge_video_encoder: str = Field("", alias="MERGE_VIDEO_ENCODER")
    # Scratch space for downloaded inputs and outputs; empty: the system's temp dir.
    merge_workdir: str = Field("", alias="MERGE_WORKDIR")
