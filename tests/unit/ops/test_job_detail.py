"""What an operator sees of a job, from its documents alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.audio import AudioFailed, AudioRendered, AudioSegment
from schemas.errors import ErrorInfo
from schemas.job import ProductionJobSpec
from services.lifecycle.plan import new_job_fields
from services.ops.actions import ActionRecord
from services.ops.job_detail import (
    cancellable,
    media_keys,
    outcome_entries,
    retryable_stages,
    stage_row,
    stage_rows,
    timeline,
    webhook_attempts,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ENV: dict[str, Any] = {"tenant_id": "acme", "producer": "tests"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def production_job(**fields: Any) -> dict[str, Any]:
    spec = ProductionJobSpec.model_validate(
        {
            "prompt": "sea",
            "scenes": [{"prompt": "a", "duration_s": 2, "video": "ingest/acme/a.mp4"}],
        }
    )
    doc = {
        "_id": "job-1",
        "job_id": "job-1",
        "tenant_id": "acme",
        "kind": "production",
        "created_at": at(0),
        "updated_at": at(0),
        **new_job_fields(spec, "c-1"),
    }
    return {**doc, **fields}


def rendered(attempt: int = 1) -> AudioRendered:
    segment = AudioSegment(
        scene_index=0,
        s3_key="audio/job-1/a1-scene-000.mp3",
        duration_s=2.0,
        provider="local",
        cached=False,
        silent_fallback=False,
    )
    return AudioRendered(job_id="job-1", segments=[segment], attempt=attempt, **ENV)


def outcome(seconds: float, body: dict[str, Any]) -> dict[str, Any]:
    return {"_id": f"job-1:{seconds}", "job_id": "job-1", "seq": at(seconds), "body": body}


def test_stage_rows_carry_times_errors_and_operator_detail() -> None:
    failed = {
        "status": "FAILED",
        "created_at": at(1),
        "updated_at": at(3.5),
        "attempt_of_job": 2,
        "operator_detail": "ValueError: bad frame",
        "outputs": [
            {
                "event_type": "merge.failed",
                "error": {"code": "ffmpeg_failed", "message": "could not"},
            }
        ],
    }
    row = stage_row("merge.concat", failed)
    assert (row.status, row.attempt, row.duration_ms) == ("FAILED", 2, 2500)
    assert (row.error_code, row.error_message) == ("ffmpeg_failed", "could not")
    assert row.operator_detail == "ValueError: bad frame" and row.finished_at == at(3.5)
    running = {
        "status": "RUNNING",
        "created_at": at(1),
        "updated_at": at(2),
        "progress": {"percent": 40, "note": "scene 2 of 5", "attempt": 3},
    }
    row = stage_row("audio", running)
    assert (row.progress, row.note, row.attempt) == (40, "scene 2 of 5", 3)
    assert (row.finished_at, row.duration_ms, row.error_code) == (None, None, None)
    unqueued = stage_row("clip", {"status": "FAILED", "error": "the job could not be queued"})
    assert (unqueued.error_code, unqueued.attempt) == ("submit_failed", 1)

    names = [
        r.name
        for r in stage_rows(
            {"merge.concat": failed, "audio": running}, {"audio": running, "audio.a2": running}
        )
    ]
    assert names == ["audio", "merge.concat", "voiceover", "voiceover.audio.a2"]


def test_outcomes_say_what_they_did_to_the_job() -> None:
    error = ErrorInfo(code="provider_failed", message="no", retryable=False, attempts=1)
    docs = [
        outcome(5, rendered().model_dump(mode="json")),
        outcome(6, rendered().model_dump(mode="json")),  # the same outcome again
        outcome(7, {"retry": 2}),
        outcome(
            8, AudioFailed(job_id="job-1", error=error, attempt=2, **ENV).model_dump(mode="json")
        ),
        outcome(9, {"event_type": "from.the.future", "x": 1}),
    ]
    entries = outcome_entries(production_job(), docs)
    assert [(e.name, e.detail) for e in entries] == [
        ("audio.rendered", "music rendered"),
        ("audio.rendered", "no effect (late or repeated)"),
        ("audio retry", "audio retry: attempt 2"),
        ("audio.failed", "music generation failed (provider_failed)"),
        ("from.the.future", "an outcome the lifecycle cannot read"),
    ]
    assert [e.at for e in entries] == [at(s) for s in (5, 6, 7, 8, 9)]


def test_the_timeline_is_in_time_order_with_durations() -> None:
    job = production_job(
        status="FAILED", updated_at=at(20), error={"code": "video_failed", "message": "x"}
    )
    rows = stage_rows(
        {"merge.concat": {"status": "FAILED", "created_at": at(2), "updated_at": at(12)}}, {}
    )
    entries = timeline(
        job,
        rows,
        outcome_entries(job, [outcome(13, {"overdue": 60})]),
        [ActionRecord(at(1), "Ana (k1)", "retry", "audio: attempt 2")],
    )
    assert [(e.name, e.duration_ms) for e in entries] == [
        ("job submitted", None),
        ("operator retry", None),
        ("merge.concat started", None),
        ("merge.concat failed", 10_000),
        ("video overdue", None),
        ("job failed", 20_000),
    ]
    assert entries[-1].detail == "failed: video_failed"


def test_webhook_attempts_and_media() -> None:
    job = {
        "webhooks": [
            {"type": "job.completed", "at": at(3), "outcome": "retrying", "status": 502},
            {"type": "job.completed", "outcome": "refused", "reason": "private address"},
        ],
        "outputs": {
            "result": "renders/job-1/result-v1.mp4",
            "video": "renders/job-1/video.mp4",
            "audio": "audio/job-1/a1-soundtrack.mp3",
        },
    }
    hooks = webhook_attempts(job)
    assert [(h.stage, h.status_code, h.outcome, h.error) for h in hooks] == [
        ("job.completed", 502, "retrying", None),
        ("job.completed", None, "refused", "private address"),
    ]
    stages = {"audio": {"outputs": [rendered().model_dump(mode="json")]}}
    voice = {"audio": {"outputs": [{"s3_key": "audio/job-1.vo/take.wav"}]}}
    audio, video = media_keys(job, stages, voice)
    assert audio == [
        ("audio", "audio/job-1/a1-soundtrack.mp3"),
        ("audio scene 1", "audio/job-1/a1-scene-000.mp3"),
        ("voiceover audio", "audio/job-1.vo/take.wav"),
    ]
    assert video == ("result", "renders/job-1/result-v1.mp4")
    only = media_keys({"outputs": {"video": "renders/j/v.mp4"}}, {}, {})
    assert only == ([], ("video", "renders/j/v.mp4"))
    merged = media_keys({}, {"merge": {"outputs": [{"s3_key": "media/acme/out.mp4"}]}}, {})
    assert merged == ([], ("merge", "media/acme/out.mp4"))
    assert media_keys({}, {}, {}) == ([], None)


@pytest.mark.parametrize(
    ("job", "retryable"),
    [
        (production_job(status="COMPLETED"), ["audio"]),
        (production_job(status="RUNNING"), []),
        (production_job(status="COMPLETED", spec={"feature": {"audio": False}}), []),
        ({"kind": "clip", "status": "COMPLETED"}, []),
    ],
)
def test_retryable_stages_follow_the_job_apis_rules(
    job: dict[str, Any], retryable: list[str]
) -> None:
    assert retryable_stages(job) == retryable


def test_only_unfinished_jobs_can_be_cancelled() -> None:
    assert cancellable({"status": "RUNNING"}, "RUNNING")
    assert cancellable({}, "PENDING")
    assert not cancellable({}, "COMPLETED")
    assert not cancellable({"status": "CANCELLED"}, "CANCELLED")
