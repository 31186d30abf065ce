"""The results listener on real Kafka: following every result topic of the registry,
positioned before it says ready, and resuming where it was after its consumer fails."""

from __future__ import annotations

import asyncio

from schemas import TOPICS, Event, encode_event
from schemas.clip import ClipReady
from schemas.example_events import EXAMPLES
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.settings import Settings
from services.submitter.listener import ResultsListener
from services.submitter.waiter import ResultWaiter
from tests.support.events import clip_ready
from tests.support.kafka import produce

ready = clip_ready


async def test_results_are_seen_from_ready_on_and_across_a_restart(settings: Settings) -> None:
    await ensure_topics(settings, TOPICS.results())
    emitter = KafkaEmitter(settings, "test-clipper")
    await emitter.start()
    # Produced before the listener exists: nobody can be waiting for it, so it is skipped.
    await emitter.emit([ready("old")])
    waiter = ResultWaiter()
    seen: list[str] = []

    def sink(event: Event, key: str) -> None:
        seen.append(key)
        assert isinstance(event, ClipReady) and key == event.request_id
        waiter.resolve(event, key)

    listener = ResultsListener(settings, sink, client_id="test-listener", max_restart_delay_s=1)
    try:
        assert await listener.start(ready_timeout_s=30)
        with waiter.expect("r1") as pending:
            await emitter.emit([ready("r1")])
            assert await pending.wait(10) is not None

        # Break the consumer under the listener, then produce while it is down.
        consumer = listener._consumer
        assert consumer is not None
        await consumer.stop()
        with waiter.expect("r2") as pending:
            await emitter.emit([ready("r2")])
            assert await pending.wait(20) is not None
        for _ in range(100):
            if listener.ready:
                break
            await asyncio.sleep(0.1)
        assert listener.ready
        await listener.ping(timeout_s=5)
        assert seen == ["r1", "r2"]
    finally:
        await listener.stop()
        await emitter.stop()
    assert not listener.ready


def result(event_type: str, job_id: str) -> Event:
    return EXAMPLES[(event_type, 1)].model_copy(update={"job_id": job_id})


async def test_every_result_topic_reaches_its_waiter_by_its_key(settings: Settings) -> None:
    await ensure_topics(settings, TOPICS.results())
    waiter = ResultWaiter()
    listener = ResultsListener(settings, waiter.resolve, client_id="test-listener")
    emitter = KafkaEmitter(settings, "test-stages")
    await emitter.start()
    try:
        assert await listener.start(ready_timeout_s=30)
        assert set(listener.topics) == {
            t.full_name(settings.topic_prefix) for t in TOPICS.results()
        }
        results = [
            result("audio.rendered", "job-audio"),
            result("merge.completed", "job-merge"),
            result("video.rendered", "job-video"),
            result("job.failed", "job-job"),
            ready("clip-1"),
        ]
        ids = ["job-audio", "job-merge", "job-video", "job-job", "clip-1"]
        pending = [waiter.expect(i) for i in ids]
        # Not results of their topic, or not events at all: skipped, nobody is woken.
        stray = waiter.expect("job-stray")
        audio_topic = TOPICS.audio_results.full_name(settings.topic_prefix)
        await produce(
            settings,
            audio_topic,
            [b"{not json", encode_event(result("merge.completed", "job-stray"))],
        )
        await emitter.emit(results)
        for p, sent in zip(pending, results, strict=True):
            got = await p.wait(20)
            assert got == sent, p.key
            p.close()
        assert await stray.wait(0.5) is None
        stray.close()
    finally:
        await listener.stop()
        await emitter.stop()


async def test_ready_only_once_every_result_topic_exists(settings: Settings) -> None:
    await ensure_topics(settings, [TOPICS.clip_results])
    listener = ResultsListener(
        settings, ResultWaiter().resolve, client_id="test-listener", max_restart_delay_s=1
    )
    try:
        assert not await listener.start(ready_timeout_s=3)
        await ensure_topics(settings, TOPICS.results())
        assert await listener.start(ready_timeout_s=30)
    finally:
        await listener.stop()
