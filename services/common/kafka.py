"""Kafka adapters: topic creation from the registry, and the producer behind emit and DLQ."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas import TOPICS, Event, Topic, encode_event
from schemas.dlq import (
    HEADER_ORIGINAL_SHA256,
    HEADER_ORIGINAL_SIZE,
    HEADER_TRUNCATED,
    TRUNCATED_BODY_BYTES,
)
from schemas.topics import DLQ_SUFFIX
from services.common.codec import RawMessage, event_headers
from services.common.obs import metrics, trace
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
        self._max_request = max(settings.max_message_bytes * 2, 1024 * 1024)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=self._max_request,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def emit(self, events: Sequence[Event]) -> None:
        futures = []
        for event in events:
            topic = TOPICS.for_event(event.event_type)
            futures.append(
                await self._producer.send(
                    topic.full_name(self._prefix),
                    value=encode_event(event),
                    key=topic.key_for(event),
                    headers=[*event_headers(event), *trace.kafka_headers()],
                )
            )
        for fut in futures:
            await fut
        for event in events:
            metrics.EVENTS_PRODUCED.labels(
                TOPICS.for_event(event.event_type).name, event.event_type
            ).inc()

    async def dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        # The DLQ of a prefixed topic is that name plus the suffix, whatever the prefix.
        if all(name != trace.TRACEPARENT for name, _ in headers):
            headers = [*headers, *trace.kafka_headers()]
        value, headers = fit_dead_letter(msg.value, msg.key, headers, self._max_request)
        await self._producer.send_and_wait(
            msg.topic + DLQ_SUFFIX, value=value, key=msg.key, headers=headers
        )


# Room for the record's framing and the producer's own batch overhead.
_RECORD_OVERHEAD = 16 * 1024


def fit_dead_letter(
    value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]], max_request: int
) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The body and headers to dead-letter: unchanged when they fit the producer's
    request limit, else the body's first bytes with its size and hash in the headers
    (the broker may accept records larger than any producer of ours may send)."""
    size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers)
    if value is None or size + _RECORD_OVERHEAD <= max_request:
        return value, headers
    return value[:TRUNCATED_BODY_BYTES], [
        *headers,
        (HEADER_TRUNCATED, b"true"),
        (HEADER_ORIGINAL_SIZE, str(len(value)).encode()),
        (HEADER_ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    ]
