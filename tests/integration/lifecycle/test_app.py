"""The lifecycle's agents on the real stack: a producer writing ``job.requested`` straight
onto the topic gets the same validation, persistence and first events as over HTTP."""

from __future__ import annotations

import json
from typing import Any

from schemas import TOPICS, decode_event
from schemas.job import JobCompleted, JobFailed, JobRequested, ProductionJobSpec
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.lifecycle.app import build_app
from services.lifecycle.settings import LifecycleSettings
from tests.support.kafka import produce, read


def lifecycle_settings(settings: Settings) -> LifecycleSettings:
    return LifecycleSettings.model_construct(
        **{**LifecycleSettings().model_dump(), **settings.model_dump()}
    )


def requested(job_id: str, **spec: Any) -> JobRequested:
    body = {"prompt": "waves", "video": "ingest/acme/whole.mp4", "feature": {"audio": False},
            **spec}  # fmt: skip
    return JobRequested(job_id=job_id, tenant_id="acme", producer="tests",
                        spec=ProductionJobSpec.model_validate(body))  # fmt: skip


async def test_job_requests_over_the_topic(settings: Settings) -> None:
    await ensure_topics(settings)
    good = requested("job-topic")
    no_video = json.loads(requested("job-bad").model_dump_json())
    no_video["spec"]["video"] = None  # a production job needs a video: invalid
    app = build_app(lifecycle_settings(settings))
    await app.start()
    try:
        topic = TOPICS.jobs_requests.full_name(settings.topic_prefix)
        await produce(settings, topic, [good.model_dump_json().encode(),
                                        json.dumps(no_video).encode(), b"{not json"])  # fmt: skip
        results = await read(settings, TOPICS.jobs_results.full_name(settings.topic_prefix), 2,
                             timeout_s=60, settle_s=1.0)  # fmt: skip
        dead = await read(settings, TOPICS.jobs_requests.dlq_name(settings.topic_prefix), 2,
                          settle_s=0.5)  # fmt: skip
    finally:
        await app.stop()
    events = {e.job_id: e for e in (decode_event(r.value) for r in results if r.value)
              if isinstance(e, JobCompleted | JobFailed)}  # fmt: skip
    assert set(events) == {"job-topic", "job-bad"}
    done = events["job-topic"]
    assert isinstance(done, JobCompleted) and done.outputs["result"] == "ingest/acme/whole.mp4"
    assert done.audio_status == "NOT_REQUESTED"
    failed = events["job-bad"]
    assert isinstance(failed, JobFailed) and failed.error.code == "invalid_request"
    assert "needs a video" in failed.error.message
    reasons = {r.value: dict(r.headers)["error"] for r in dead}
    assert set(reasons) == {json.dumps(no_video).encode(), b"{not json"}
