"""The stage kit against real Kafka, MongoDB and a real Faust agent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from schemas import TOPICS, Event, decode_event
from schemas.clip import ClipReady, ClipRequested
from services.common.checkpoints import MongoCheckpoints
from services.common.codec import Codec, RawMessage
from services.common.context import StageContext
from services.common.faust_app import bind_stage, create_app
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.ledger import MongoLedger
from services.common.mongo import connect, database
from services.common.obs import trace
from services.common.retry import RetryPolicy
from services.common.settings import Settings
from services.common.stage import StageRunner
from tests.support.events import clip_failed, clip_request
from tests.support.kafka import produce, read


async def test_faust_agent_dead_letters_poison_and_processes_each_event_once(
    settings: Settings,
) -> None:
    await ensure_topics(settings)
    calls: list[str] = []

    async def handler(event: Event, ctx: StageContext) -> Sequence[Event]:
        assert isinstance(event, ClipRequested)
        calls.append(str(event.event_id))
        return [
            ClipReady(
                request_id=event.request_id,
                tenant_id=event.tenant_id,
                producer="tests",
                correlation_id=event.correlation_id,
                episode_id=event.episode_id,
                s3_key=f"audio_clips/{event.episode_id}/1000-3000.mp3",
                clip_url="http://x/y",
                cache_hit=False,
                generation_time_ms=1,
                size_bytes=10,
                start_ms=1000,
                end_ms=3000,
                format="mp3",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        ]

    @asynccontextmanager
    async def factory() -> AsyncIterator[StageRunner]:
        mongo = connect(settings)
        emitter = KafkaEmitter(settings, "kit-test")
        await emitter.start()
        try:
            yield StageRunner(
                stage="kit-test",
                codec=Codec.for_topic(TOPICS.clip_requests, settings.max_message_bytes),
                handler=handler,
                on_failure=clip_failed,
                emitter=emitter,
                dead_letters=emitter,
                ledger=MongoLedger(database(mongo, settings)),
                checkpoints=MongoCheckpoints(database(mongo, settings)),
                retry=RetryPolicy(3, 0.01, 0.05),
            )
        finally:
            await emitter.stop()
            await mongo.close()

    app = create_app("kit-test", settings)
    bind_stage(app, TOPICS.clip_requests, settings, factory)
    good = clip_request()
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    await app.start()
    try:
        # Poison first, then a good event twice (a redelivery), then another good one.
        await produce(
            settings,
            topic,
            [
                b"{not json",
                good.model_dump_json().encode(),
                good.model_dump_json().encode(),
                clip_request(request_id="req-2").model_dump_json().encode(),
            ],
        )
        results = await read(
            settings, TOPICS.clip_results.full_name(settings.topic_prefix), 2, settle_s=2.0
        )
        dlq = await read(settings, TOPICS.clip_requests.dlq_name(settings.topic_prefix), 1)
    finally:
        await app.stop()

    ready = [decode_event(r.value) for r in results if r.value is not None]
    assert sorted(e.request_id for e in ready if isinstance(e, ClipReady)) == ["req-1", "req-2"]
    assert len(ready) == 2
    assert len(calls) == 2, "the redelivered event must not run the handler again"
    assert len(dlq) == 1
    assert dlq[0].value == b"{not json"
    headers = dict(dlq[0].headers)
    assert b"not valid JSON" in headers["error"]
    assert headers["stage"] == b"kit-test"
    assert headers["attempts"] == b"1"
    assert datetime.fromisoformat(headers["first_seen"].decode()) <= datetime.now(UTC)


async def test_the_emitter_puts_the_current_trace_on_events_and_dead_letters(
    settings: Settings,
) -> None:
    await ensure_topics(settings)
    ctx = trace.start(None)
    traced, untraced = clip_request(request_id="traced"), clip_request(request_id="untraced")
    poison = RawMessage(topic=TOPICS.clip_requests.full_name(settings.topic_prefix),
                        value=b"not json", key=b"poison")  # fmt: skip
    async with KafkaEmitter(settings, "trace-test") as emitter:
        with trace.use(ctx):
            await emitter.emit([traced])
            await emitter.dead_letter(poison, [("error", b"not json")])
        await emitter.emit([untraced])
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    records = {r.key: dict(r.headers) for r in await read(settings, topic, 2)}
    assert records[b"traced"][trace.TRACEPARENT] == ctx.header().encode()
    assert trace.TRACEPARENT not in records[b"untraced"]
    [dead] = await read(settings, topic + ".dlq", 1)
    assert dict(dead.headers)[trace.TRACEPARENT] == ctx.header().encode()
