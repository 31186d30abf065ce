"""Operators' view of a production job on the real stack: driven to completion by the
real lifecycle over MongoDB, with stage records and a webhook attempt as the stages and
the webhook service write them; then retried and cancelled by an operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import TOPICS, Event
from schemas.audio import AudioRendered, AudioSegment
from schemas.job import JobRequested, ProductionJobSpec
from schemas.merge import MergeCompleted
from services.common.job_store import JobStatusRecorder, JobStore
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.media_store import MediaStore
from services.common.mongo import Doc, open_database
from services.common.settings import Settings
from services.lifecycle.handler import LifecycleHandler
from services.lifecycle.store import ProductionJobs
from services.ops.jobs import Actor, OpsJobs
from services.submitter.jobs.control import JobControl, JobFinished
from services.webhooks.plan import Attempt
from services.webhooks.store import JobWebhooks
from tests.support.fakes import context_for
from tests.support.kafka import read

ENV: dict[str, Any] = {"tenant_id": "acme", "producer": "tests"}
JOB = "job-ops-1"
OPERATOR = Actor("0123456789ab", "night-shift")
SCENES = [
    {"prompt": f"scene {i}", "duration_s": 2.0, "video": f"ingest/acme/s{i}.mp4"} for i in range(2)
]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Doc]]:
    async with open_database(settings, "tests-ops") as database:
        yield database


def merged(step: str, key: str) -> MergeCompleted:
    return MergeCompleted(job_id=JOB, s3_key=key, duration_ms=4000, size_bytes=10, step=step, **ENV)


def rendered() -> AudioRendered:
    segments = [
        AudioSegment(
            scene_index=i,
            s3_key=f"audio/{JOB}/a1-scene-00{i}.mp3",
            duration_s=2.0,
            provider="local",
            cached=False,
            silent_fallback=False,
        )
        for i in range(2)
    ]
    return AudioRendered(job_id=JOB, segments=segments, **ENV)


async def stage_ran(jobs: JobStore, stage: str, event: Event, outputs: list[Event]) -> None:
    """The stage records a worker's runner writes around one event."""
    recorder = JobStatusRecorder(jobs)
    await recorder.started(stage, event)
    await recorder.finished(stage, event, outputs, failed=False)


async def test_a_completed_job_in_full_then_retried_and_cancelled(
    settings: Settings, db: AsyncDatabase[Doc], store: MediaStore
) -> None:
    await ensure_topics(settings)
    jobs = JobStore(db)
    async with KafkaEmitter(settings, "tests-ops") as emitter:
        lifecycle = LifecycleHandler(jobs=ProductionJobs(db), emitter=emitter, video_timeout_s=60)
        spec = ProductionJobSpec.model_validate({"prompt": "a calm sea", "scenes": SCENES})
        request = JobRequested(job_id=JOB, spec=spec, **ENV)
        # (the stage whose record the outcome leaves, the event), in the order they happen
        steps: list[tuple[str | None, Event]] = [
            (None, request),
            ("merge.concat", merged("concat", f"renders/{JOB}/video.mp4")),
            ("audio", rendered()),
            (None, merged("soundtrack-a1", f"audio/{JOB}/a1-soundtrack.mp3")),
            (None, merged("mux-v1", f"renders/{JOB}/result-v1.mp4")),
        ]
        for stage, event in steps:
            if stage is not None:
                await stage_ran(jobs, stage, event, [event])
            await lifecycle(event, context_for(event, "lifecycle"))
        attempt = Attempt("msg_1", "job.completed", 1, datetime.now(UTC), "retrying", status=500)
        await JobWebhooks(db).record(JOB, attempt)

        ops = OpsJobs(db, JobControl(db, emitter), store, 600)
        await ops.ensure_indexes()
        detail = await ops.detail(JOB)
        assert detail is not None
        assert (detail.tenant_id, detail.kind, detail.status) == ("acme", "production", "COMPLETED")
        assert detail.progress == 100 and detail.error_code is None
        assert detail.retryable_stages == ["audio"] and detail.cancellable is False
        assert {s.name: s.status for s in detail.stages} == {
            "audio": "COMPLETED",
            "merge.concat": "COMPLETED",
        }
        assert all(s.duration_ms is not None and s.finished_at for s in detail.stages)
        names = [e.name for e in detail.timeline]
        assert names[0] == "job submitted" and names[-1] == "job completed"
        assert "audio.rendered" in names and "merge.completed (mux-v1)" in names
        assert "audio completed" in names
        assert [e.at for e in detail.timeline] == sorted(e.at for e in detail.timeline)
        notes = {e.name: e.detail for e in detail.timeline}
        assert notes["audio.rendered"] == "music rendered"
        assert notes["merge.completed (concat)"] == "videos joined"
        assert detail.timeline[-1].duration_ms is not None
        assert detail.video is not None and detail.video.label == "result"
        assert detail.video.content_type == "video/mp4" and "result-v1.mp4" in detail.video.url
        labels = {a.label for a in detail.audio}
        assert {"audio", "audio scene 1", "audio scene 2"} <= labels
        assert all(a.content_type == "audio/mpeg" for a in detail.audio)
        [hook] = detail.webhooks
        assert (hook.stage, hook.status_code, hook.outcome) == ("job.completed", 500, "retrying")
        assert detail.actions == []

        retried = await ops.retry(JOB, "audio", OPERATOR)
        assert retried.status == "RUNNING" and retried.retryable_stages == []
        [action] = retried.actions
        assert action.action == "retry" and action.actor == OPERATOR.label
        assert action.detail == "audio: attempt 2"
        retry_entry = next(e for e in retried.timeline if e.name == "audio retry")
        assert retry_entry.detail == "audio retry: attempt 2"
        with pytest.raises(JobFinished):
            await ops.retry(JOB, "audio", OPERATOR)

        cancelled = await ops.cancel(JOB, OPERATOR)
        assert cancelled.status == "CANCELLED" and cancelled.cancellable is False
        assert [a.action for a in cancelled.actions] == ["retry", "cancel"]

    # The retry nudged the lifecycle, as the job API's retry does.
    nudges = await read(settings, TOPICS.jobs_requests.full_name(settings.topic_prefix), 1)
    assert [r.key for r in nudges] == [JOB.encode()]
    recorded = await db["ops_actions"].find({"job_id": JOB}).to_list()
    assert sorted(d["action"] for d in recorded) == ["cancel", "retry"]
    assert all(d["actor_key_id"] == OPERATOR.key_id and d["tenant_id"] == "acme" for d in recorded)

    page = await ops.list(status="CANCELLED")
    assert [(j.job_id, j.tenant_id) for j in page.jobs] == [(JOB, "acme")]
    assert (await ops.list(tenant="globex")).jobs == []
    assert await ops.detail("no-such-job") is None
