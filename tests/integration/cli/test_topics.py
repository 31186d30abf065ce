"""``tapedeck topics describe`` on the real Kafka: offsets, and a real consumer group's
committed offset and lag."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from schemas import TOPICS
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from tests.integration.cli.command import tapedeck


async def test_describe_shows_offsets_and_a_groups_lag(settings: Settings) -> None:
    await ensure_topics(settings, [TOPICS.clip_requests, TOPICS.clip_requests.dlq()])
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, value=b"{}", key=f"k{n}".encode(), partition=0)
    finally:
        await producer.stop()
    # A group that read two of the five, as a stage worker would have committed them.
    group = f"{settings.topic_prefix}tapedeck-clipper"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(2, "")})
    finally:
        await consumer.stop()

    code, out, err = await tapedeck(
        settings, "topics", "describe", "--topic", "clip.requests", "--json"
    )
    assert code == 0, err
    [described] = json.loads(out)
    assert described["topic"] == topic and described["messages"] == 5
    assert described["lag"] == {group: 3}
    first = described["partitions"][0]
    assert (first["partition"], first["earliest"], first["latest"]) == (0, 0, 5)
    assert first["groups"] == {group: {"committed": 2, "lag": 3}}
    assert len(described["partitions"]) == TOPICS.clip_requests.partitions

    code, out, err = await tapedeck(settings, "topics", "describe")
    assert code == 0, err
    lines = [line for line in out.splitlines() if group in line]
    assert len(lines) == 1 and topic in lines[0] and lines[0].split("│")[-2].strip() == "3"
    assert TOPICS.clip_requests.dlq_name(settings.topic_prefix) in out

    code, out, _ = await tapedeck(
        settings, "topics", "describe", "--topic", "clip.requests", "--partitions"
    )
    rows = [line for line in out.splitlines() if group in line]
    assert code == 0 and len(rows) == TOPICS.clip_requests.partitions
