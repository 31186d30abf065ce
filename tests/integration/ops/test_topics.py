"""Topic offsets and a real consumer group's lag, as the cluster reports them."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import TOPICS
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.ops.topics import describe
from tests.support.kafka import produce


async def test_offsets_and_a_groups_lag(settings: Settings) -> None:
    await ensure_topics(settings)
    topic = TOPICS.merge_requests.full_name(settings.topic_prefix)
    await produce(settings, topic, [b"a", b"b", b"c", b"d", b"e"], key=b"same-partition")
    group = f"{settings.topic_prefix}tapedeck-test-group"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, group_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        read: list[tuple[int, int]] = []
        while len(read) < 2:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2 - len(read))
            read += [(r.partition, r.offset) for records in batch.values() for r in records]
        partition = read[0][0]
        await consumer.commit({TopicPartition(topic, partition): 2})
    finally:
        await consumer.stop()

    infos = {t.name: t for t in await describe(settings)}
    assert set(infos) == {t.full_name(settings.topic_prefix) for t in TOPICS} | {
        t.dlq_name(settings.topic_prefix) for t in TOPICS
    }
    parts = {p.partition: p for p in infos[topic].partitions}
    assert len(parts) == TOPICS.merge_requests.partitions
    busy = parts[partition]
    assert (busy.earliest, busy.latest) == (0, 5)
    assert busy.groups[group].committed == 2 and busy.groups[group].lag == 3
    for p, info in parts.items():
        if p != partition:
            assert info.latest == 0 and info.groups[group].committed is None
            assert info.groups[group].lag == 0
    # The group reads nothing else, so no other topic names it.
    other = infos[TOPICS.clip_requests.full_name(settings.topic_prefix)]
    assert all(group not in p.groups for p in other.partitions)


async def test_nothing_created_yet_describes_as_empty(settings: Settings) -> None:
    # No topic under this test's prefix exists: an empty answer, not an error.
    assert await describe(settings) == []
