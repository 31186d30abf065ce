"""Pipeline figures from real records: stage records and ledger entries as the stage
runner writes them, lifecycle outcomes and claims, webhook deliveries, usage counts, and
a real consumer group's lag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo.asynchronous.database import AsyncDatabase

from schemas import TOPICS, ErrorInfo
from schemas.merge import MergeFailed, MergeRequested
from services.common.job_store import STAGES, JobStatusRecorder, JobStore
from services.common.kafka import ensure_topics
from services.common.ledger import MongoLedger
from services.common.mongo import Doc, open_database
from services.common.obs import stats
from services.common.settings import Settings
from services.lifecycle.plan import Action, Retry
from services.lifecycle.store import ProductionJobs
from services.ops.pipeline import pipeline_stats
from services.webhooks.plan import SENT, Attempt, Delivery
from services.webhooks.store import DeliveryStore
from tests.support.events import clip_failed, clip_request
from tests.support.kafka import produce


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Doc]]:
    async with open_database(settings, "tests-ops") as database:
        yield database


async def lagging_group(settings: Settings) -> str:
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    await produce(settings, topic, [b"1", b"2", b"3", b"4"], key=b"one-partition")
    group = f"{settings.topic_prefix}tapedeck-clipper"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        read: list[TopicPartition] = []
        while not read:
            read = list(await consumer.getmany(timeout_ms=1000, max_records=1))
        [tp] = read
        await consumer.commit({tp: 1})
    finally:
        await consumer.stop()
    return group


async def test_figures_of_the_window(settings: Settings, db: AsyncDatabase[Doc]) -> None:
    await ensure_topics(settings)
    jobs, ledger = JobStore(db), MongoLedger(db)
    await jobs.ensure_indexes()
    recorder = JobStatusRecorder(jobs)
    error = ErrorInfo(code="input_missing", message="gone", retryable=False, attempts=1)
    # Two clips done, one merge failed: what the stage runner records for each event.
    for n in (1, 2):
        event = clip_request(request_id=f"clip-{n}")
        await recorder.started("clip", event)
        await recorder.finished("clip", event, [clip_failed(event, error)], failed=False)
        await ledger.record("clip", str(event.event_id), ["out-1"])
    merge = MergeRequested(
        job_id="job-m",
        tenant_id="acme",
        producer="tests",
        operation="concat_video",
        inputs=["ingest/acme/a.mp4"],
        output_key="media/acme/out.mp4",
    )
    await recorder.started("merge.concat", merge)
    failed = MergeFailed(job_id="job-m", tenant_id="acme", producer="tests", error=error)
    await recorder.finished("merge.concat", merge, [failed], failed=True, detail="boom")
    await ledger.record("merge", str(merge.event_id), [str(failed.event_id)])
    # Hours ago: outside the window.
    old = datetime.now(UTC) - timedelta(hours=3)
    await db[STAGES].insert_one(
        {
            "_id": "old:clip",
            "job_id": "old",
            "stage": "clip",
            "status": "FAILED",
            "created_at": old,
            "updated_at": old,
        }
    )

    production = ProductionJobs(db)
    await production.record("job-p", Retry(2), "retry-a2")
    await production.claim("job-p", Action("fail", merge, status="FAILED"))

    deliveries = DeliveryStore(db)
    now = datetime.now(UTC)
    delivery = Delivery(
        "msg_1",
        "job-p",
        "acme",
        "job.failed",
        "https://example.com/h",
        b"{}",
        now,
        now + timedelta(days=1),
    )
    await deliveries.add(delivery)
    await deliveries.settle(
        delivery, Attempt("msg_1", "job.failed", 1, datetime.now(UTC), SENT, status=204)
    )

    async with stats.recording(db, every_s=3600):
        stats.count(stats.StatName.PROVIDER_CALL, 2, provider="fal", status="200")
        stats.count(stats.StatName.PROVIDER_CALL, provider="fal", status="500")
        stats.count(stats.StatName.PROVIDER_CALL, provider="local", status="timeout")
        stats.count(stats.StatName.CACHE, 2, cache="clip", result="hit")
        stats.count(stats.StatName.CACHE, cache="clip", result="miss")
        for start, n in ((0, 1), (5000, 3)):
            stats.count(
                stats.StatName.CLIP_REQUEST,
                n,
                tenant="acme",
                episode_id="ep-1",
                start_ms=str(start),
                duration_ms="1000",
            )
    group = await lagging_group(settings)

    figures = await pipeline_stats(db, settings, window=timedelta(hours=1))
    assert figures.window_s == 3600 and figures.lag_error is None
    by_stage = {s.stage: s for s in figures.stages}
    clip, merge_stats = by_stage["clip"], by_stage["merge"]
    assert (clip.events_in, clip.events_out, clip.failed) == (2, 2, 0)
    assert clip.p50_ms is not None and clip.p95_ms is not None and clip.p50_ms <= clip.p95_ms
    assert (merge_stats.events_in, merge_stats.events_out, merge_stats.failed) == (1, 1, 1)
    lifecycle = by_stage["lifecycle"]
    assert (lifecycle.events_in, lifecycle.events_out, lifecycle.failed) == (1, 1, 1)
    hooks = by_stage["webhooks"]
    assert (hooks.events_in, hooks.events_out, hooks.failed) == (1, 1, 0)

    providers = {p.provider: p for p in figures.providers}
    assert (providers["fal"].calls, providers["fal"].errors) == (3, 1)
    assert providers["fal"].error_ratio == pytest.approx(1 / 3)
    assert providers["local"].error_ratio == 1.0
    [cache] = figures.caches
    assert (cache.cache, cache.hits, cache.misses) == ("clip", 2, 1)
    assert cache.hit_ratio == pytest.approx(2 / 3)
    assert [(c.start_ms, c.requests) for c in figures.top_clips] == [(5000, 3), (0, 1)]

    rows = [r for r in figures.lag if r.group == group and r.lag]
    assert [(r.topic, r.lag) for r in rows] == [
        (TOPICS.clip_requests.full_name(settings.topic_prefix), 3)
    ]

    narrow = await pipeline_stats(db, settings, window=timedelta(seconds=0))
    assert all(s.events_in == 0 and s.failed == 0 for s in narrow.stages)
