"""bind_stage's agent on real Kafka: with several events of a partition in hand at once,
the group's committed offset never passes one that is still being handled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from schemas import TOPICS, ErrorInfo, Event
from schemas.clip import ClipRequested
from services.common.checkpoints import MongoCheckpoints
from services.common.codec import Codec
from services.common.context import StageContext
from services.common.faust_app import bind_stage, create_app
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.ledger import MongoLedger
from services.common.mongo import connect, database
from services.common.retry import RetryPolicy
from services.common.settings import Settings
from services.common.stage import StageRunner
from tests.support.events import clip_failed, clip_request

SERVICE = "order-test"


def same_partition_ids(count: int, partitions: int) -> tuple[int, list[str]]:
    """``count`` request ids (the topic's key) that Kafka's default partitioner puts on
    one partition, and that partition."""
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    wanted = partitioner(b"order-0", every, every)
    ids = [f"order-{n}" for n in range(1000) if partitioner(f"order-{n}".encode(), every, every)
           == wanted]  # fmt: skip
    return wanted, ids[:count]


async def committed(settings: Settings, tp: TopicPartition) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        group = f"{settings.topic_prefix}tapedeck-{SERVICE}"
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return meta.offset if meta is not None and meta.offset >= 0 else None


async def test_the_commit_waits_for_an_earlier_event_still_in_hand(settings: Settings) -> None:
    await ensure_topics(settings)
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    partition, (slow_id, fast_id) = same_partition_ids(2, TOPICS.clip_requests.partitions)
    release, fast_done = asyncio.Event(), asyncio.Event()

    async def handler(event: Event, ctx: StageContext) -> Sequence[Event]:
        assert isinstance(event, ClipRequested)
        if event.request_id == slow_id:
            await release.wait()
        else:
            fast_done.set()
        return [clip_failed(event, ErrorInfo(code="x", message="", retryable=False,
                                             attempts=1))]  # fmt: skip

    @asynccontextmanager
    async def factory() -> AsyncIterator[StageRunner]:
        mongo = connect(settings)
        db = database(mongo, settings)
        try:
            async with KafkaEmitter(settings, SERVICE) as emitter:
                yield StageRunner(
                    stage=SERVICE, codec=Codec.for_topic(TOPICS.clip_requests, 100_000),
                    handler=handler, on_failure=clip_failed, emitter=emitter,
                    dead_letters=emitter, ledger=MongoLedger(db),
                    checkpoints=MongoCheckpoints(db), retry=RetryPolicy(1, 0, 0),
                )  # fmt: skip
        finally:
            await mongo.close()

    app = create_app(SERVICE, settings)
    bind_stage(app, TOPICS.clip_requests, settings, factory, concurrency=2)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    await app.start()
    try:
        sent = []
        for rid in (slow_id, fast_id):
            value = clip_request(request_id=rid).model_dump_json().encode()
            sent.append(await producer.send_and_wait(topic, value=value, key=rid.encode()))
        assert {m.partition for m in sent} == {partition}
        slow_at, fast_at = sent[0].offset, sent[1].offset
        tp = TopicPartition(topic, partition)
        await asyncio.wait_for(fast_done.wait(), 60)
        # Faust commits every second; give it three chances to commit past the slow one.
        await asyncio.sleep(3.5)
        held = await committed(settings, tp)
        assert held is None or held <= slow_at, (held, slow_at)
        release.set()
        deadline = time.monotonic() + 30
        while (now := await committed(settings, tp)) != fast_at + 1:
            assert time.monotonic() < deadline, f"committed {now}, wanted {fast_at + 1}"
            await asyncio.sleep(0.25)
    finally:
        release.set()
        await app.stop()
        await producer.stop()
