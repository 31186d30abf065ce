"""The operator API's answers, built from the operator layer's records."""

from __future__ import annotations

from datetime import UTC, datetime

from services.ops.actions import ActionRecord
from services.ops.dlq import DeadLetter
from services.ops.job_detail import JobDetail, MediaLink, StageRow, TimelineEntry, WebhookAttempt
from services.ops.pipeline import CacheStats, ClipStats, LagRow, PipelineStats, StageStats
from services.ops.topics import GroupOffset, PartitionInfo, TopicInfo
from services.submitter.http.ops_models import (
    PREVIEW_CHARS,
    DeadLetterOut,
    DeadLetterSummaryOut,
    OpsJobOut,
    PipelineOut,
    TopicListOut,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_a_job_detail_answers_in_full() -> None:
    detail = JobDetail(
        job_id="j",
        tenant_id="acme",
        kind="production",
        status="FAILED",
        created_at=NOW,
        updated_at=NOW,
        progress=40,
        error_code="video_failed",
        error_message="no video",
        stages=[
            StageRow(
                "merge.concat",
                "FAILED",
                1,
                None,
                None,
                NOW,
                NOW,
                0,
                "ffmpeg_failed",
                "could not",
                "stderr: boom",
            )
        ],
        timeline=[TimelineEntry(NOW, "job submitted", "production", None)],
        audio=[MediaLink("audio", "https://s3/a.mp3?sig", "audio/mpeg")],
        video=None,
        webhooks=[WebhookAttempt(NOW, "job.failed", 500, "retrying", None)],
        retryable_stages=[],
        cancellable=False,
        trace_id="abc",
        actions=[ActionRecord(NOW, "Ana (k1)", "cancel", "cancelled")],
    )
    out = OpsJobOut.of_detail(detail).model_dump(mode="json")
    assert out["tenant_id"] == "acme" and out["error_code"] == "video_failed"
    assert out["stages"][0]["operator_detail"] == "stderr: boom"
    assert out["audio"][0]["content_type"] == "audio/mpeg" and out["video"] is None
    assert out["webhooks"][0]["status_code"] == 500 and out["trace_id"] == "abc"
    assert out["actions"] == [
        {
            "at": "2025-01-01T00:00:00Z",
            "actor": "Ana (k1)",
            "action": "cancel",
            "detail": "cancelled",
        }
    ]


def test_a_dead_letter_answers_as_text_and_lists_as_a_preview() -> None:
    body = b'{"a": "' + b"x" * 500 + b'"}\xff'
    letter = DeadLetter(
        topic="t.dlq",
        partition=1,
        offset=9,
        timestamp=NOW,
        key=b"k\xfe",
        value=body,
        headers={"error": "bad"},
        error="bad",
        stage="clip",
        original_topic="t",
        first_seen=NOW,
        attempts=2,
        state="pending",
    )
    full = DeadLetterOut.of_letter(letter)
    assert full.ref == "1-9" and full.key == "k\\xfe" and full.size == len(body)
    assert full.value.endswith("\\xff") and full.pretty == full.value
    summary = DeadLetterSummaryOut.of(letter)
    assert len(summary.preview) == PREVIEW_CHARS and not hasattr(summary, "value")


def test_pipeline_and_topics_answer_from_their_records() -> None:
    stats = PipelineStats(
        window_s=3600,
        stages=[StageStats("clip", 3, 3, 1, 20, 90)],
        lag=[LagRow("g", "t", 0, 5)],
        providers=[],
        caches=[CacheStats("clip", 1, 1, 0.5)],
        top_clips=[ClipStats("acme", "ep", 0, 1000, 4)],
    )
    out = PipelineOut.of(stats)
    assert out.stages[0].p95_ms == 90 and out.lag[0].lag == 5 and out.lag_error is None
    assert out.top_clips[0].requests == 4 and out.caches[0].hit_ratio == 0.5
    topics = TopicListOut.of(
        [TopicInfo("t", [PartitionInfo(0, 1, 9, {"g": GroupOffset(None, 8)})])]
    )
    assert topics.model_dump() == {
        "topics": [
            {
                "name": "t",
                "partitions": [
                    {
                        "partition": 0,
                        "earliest": 1,
                        "latest": 9,
                        "groups": {"g": {"committed": None, "lag": 8}},
                    }
                ],
            }
        ]
    }
