"""The results listener on real Kafka: positioned before it says ready, and resuming
where it was after its consumer fails."""

from __future__ import annotations

import asyncio

from schemas import TOPICS
from schemas.clip import ClipReady
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.settings import Settings
from services.submitter.listener import ResultsListener
from services.submitter.waiter import ResultWaiter
from tests.support.events import clip_ready

ready = clip_ready


async def test_results_are_seen_from_ready_on_and_across_a_restart(settings: Settings) -> None:
    await ensure_topics(settings, [TOPICS.clip_results])
    emitter = KafkaEmitter(settings, "test-clipper")
    await emitter.start()
    # Produced before the listener exists: nobody can be waiting for it, so it is skipped.
    await emitter.emit([ready("old")])
    waiter = ResultWaiter()
    seen: list[str] = []

    def sink(event: object) -> None:
        seen.append(getattr(event, "request_id", "?"))
        assert isinstance(event, ClipReady)
        waiter.resolve(event)

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
