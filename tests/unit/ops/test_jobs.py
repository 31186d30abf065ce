"""A job row's error: the newest failure no later attempt of the same stage made good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ops.jobs import _row
from services.submitter.jobs.view import JobView, StageView

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def view(*stages: StageView, error: dict[str, str] | None = None) -> JobView:
    return JobView(job_id="j1", kind="production", status="COMPLETED", progress=100,
                   created_at=T0, updated_at=T0, version=2, stages=list(stages),
                   outputs={}, urls={}, audio_status=None, audio_error=None,
                   error=error)  # fmt: skip


def stage(name: str, status: str, minutes: int, code: str | None = None) -> StageView:
    err = {"code": code, "message": f"{code} happened"} if code else None
    return StageView(name, status, None, 1, T0, T0 + timedelta(minutes=minutes), err)


def test_a_retried_stage_that_completed_clears_the_row_error() -> None:
    failed = stage("audio.a1", "FAILED", 1, "provider_failed")
    assert _row(view(failed), "acme").error_code == "provider_failed"
    row = _row(view(failed, stage("audio.a2", "COMPLETED", 5)), "acme")
    assert (row.error_code, row.error_message) == (None, None)


def test_the_newest_open_failure_wins_and_a_job_error_comes_first() -> None:
    stages = (
        stage("audio.a1", "FAILED", 1, "provider_failed"),
        stage("audio.a2", "COMPLETED", 2),
        stage("merge.mux-v2", "FAILED", 3, "ffmpeg_failed"),
        stage("audio.a3", "FAILED", 4, "provider_timeout"),
    )
    assert _row(view(*stages), "acme").error_code == "provider_timeout"
    job_error = {"code": "video_overdue", "message": "no video in time"}
    assert _row(view(*stages, error=job_error), "acme").error_code == "video_overdue"
