"""Kafka adapters: topic creation from the registry, and the producer behind emit and DLQ."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas import TOPICS, Event, Topic
from schemas.topics import DLQ_SUFFIX
from services.common.codec import RawMessage, encode, event_headers
from services.common.settings import Settings

log = logging.getLogger(__name__)


def registry_topics(with_dlq: bool = True) -> list[Topic]:
    topics = list(TOPICS)
    return topics + [t.dlq() for t in topics] if with_dlq else topics


async def ensure_topics(settings: Settings, topics: Iterable[Topic] | None = None) -> list[str]:
    """Create the registry's missing topics (and their DLQs); returns the names created."""
    wanted = {t.full_name(settings.topic_prefix): t for t in (topics or registry_topics())}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=name,
                num_partitions=settings.topic_partitions or t.partitions,
                replication_factor=settings.topic_replication,
                topic_configs=t.config(),
            )
            for name, t in wanted.items()
            if name not in existing
        ]
        if new:
            resp = await admin.create_topics(new)
            for name, code, *_ in getattr(resp, "topic_errors", []) or []:
                # 36 = TOPIC_ALREADY_EXISTS: another service created it in the meantime.
                if code not in (0, 36):
                    raise RuntimeError(f"could not create topic {name}: error code {code}")
            log.info("created topics: %s", ", ".join(t.name for t in new))
        return [t.name for t in new]
    finally:
        await admin.close()


class KafkaEmitter:
    """Emits events to their registry topic, keyed so one job's events stay in order, and
    copies undecodable records to DLQs. Built once per process."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self._prefix = settings.topic_prefix
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=max(settings.max_message_bytes * 2, 1024 * 1024),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def emit(self, events: Sequence[Event]) -> None:
        futures = []
        for event in events:
            topic = TOPICS.for_event(event.event_type)
            futures.append(
                await self._producer.send(
                    topic.full_name(self._prefix),
                    value=encode(event),
                    key=topic.key_for(event),
                    headers=event_headers(event),
                )
            )
        for fut in futures:
            await fut

    async def dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        # The DLQ of a prefixed topic is that name plus the suffix, whatever the prefix.
        await self._producer.send_and_wait(
            msg.topic + DLQ_SUFFIX, value=msg.value, key=msg.key, headers=headers
        )
