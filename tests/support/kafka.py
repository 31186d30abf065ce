"""Small Kafka helpers for tests: produce raw records and read a topic back."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from schemas import TOPICS, decode_event
from services.common.settings import Settings


def key_of(value: bytes) -> bytes:
    """The key a producer of ours gives ``value``: its event's key field (consumers refuse
    an event keyed otherwise), or a fixed one for a value that is no event."""
    try:
        event = decode_event(value)
        return TOPICS.for_event(event.event_type).key_for(event)
    except Exception:
        return b"k"


async def produce(
    settings: Settings, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    # As large as the local broker accepts, so tests can send what any producer could.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=10 * 1024 * 1024
    )
    await producer.start()
    try:
        for value in values:
            keyed = key if key is not None else key_of(value)
            await producer.send_and_wait(topic, value=value, key=keyed)
    finally:
        await producer.stop()


async def read(
    settings: Settings, topic: str, count: int, timeout_s: float = 30.0, settle_s: float = 0.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read from the start of ``topic`` until ``count`` records arrived (then wait
    ``settle_s`` more to catch any extra) or the timeout passes."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
            if len(out) >= count and settle_until is None:
                settle_until = time.monotonic() + settle_s
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return out
