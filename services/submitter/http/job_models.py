"""The job API's response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]


class JobAcceptedOut(BaseModel):
    job_id: str
    status: JobStatus
    status_url: str = Field(description="GET it for the job's status and results.")


class StageOut(BaseModel):
    name: str = Field(description="e.g. audio, merge.concat, merge.mux-v1, voiceover")
    status: str
    progress: int | None = Field(description="0-100 while it runs")
    attempt: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    error: dict[str, Any] | None = None


class JobErrorOut(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    job_id: str
    kind: str
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = Field(default=None, description="The result's version (retries).")
    stages: list[StageOut]
    outputs: dict[str, str] = Field(description="Output name -> S3 key (result, video, audio)")
    urls: dict[str, str] = Field(description="Output name -> presigned URL")
    result_url: str | None = None
    video_url: str | None = None
    audio_url: str | None = None
    audio_status: str | None = None
    audio_error: str | None = None
    # The old front end's names, kept so it keeps working.
    audioUrl: str | None = None
    audioStatus: str | None = None
    audioError: str | None = None
    error: JobErrorOut | None = None
    timeline: list[dict[str, Any]] = Field(default_factory=list)
    webhooks: list[dict[str, Any]] = Field(default_factory=list)


class JobListOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")
