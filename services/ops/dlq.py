"""Dead letters for operators: list the registry topics' DLQs, read what is in them,
replay a message onto its original topic (as it was, or edited and validated first) or
discard it.

Reading never joins a consumer group: partitions are assigned by hand and read from the
beginning up to the end offsets taken when the read starts, within a time bound, so an
operator looking changes no committed offset. A message's state comes from MongoDB
(collection ``dlq_actions``): one document per settled message, claimed with a unique
insert, so two operators cannot both replay one message.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas import TOPICS, Topic
from schemas.codes import Code
from schemas.dlq import (
    DLQ_HEADERS,
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_FIRST_SEEN,
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_SHA256,
    HEADER_ORIGINAL_SIZE,
    HEADER_ORIGINAL_TOPIC,
    HEADER_STAGE,
    HEADER_TRUNCATED,
)
from services.common.codec import Codec, DecodeError, RawMessage, event_headers
from services.common.errors import PermanentError, TransientError
from services.common.mongo import Doc
from services.common.settings import Settings
from services.ops.actions import ActionRecord, Actor
from services.ops.topics import cluster_partitions

DLQ_ACTIONS = "dlq_actions"
Records = list[ConsumerRecord[bytes, bytes]]
PENDING, REPLAYED, DISCARDED = "pending", "replayed", "discarded"

# What the DLQ added, taken off again on replay. ``first_seen`` and ``attempts`` stay, so
# a replayed message that fails again is dead-lettered with its count raised by one.
STRIPPED_HEADERS = frozenset(
    {
        *DLQ_HEADERS,
        HEADER_ORIGINAL_TOPIC,
        HEADER_ORIGINAL_PARTITION,
        HEADER_ORIGINAL_OFFSET,
        HEADER_TRUNCATED,
        HEADER_ORIGINAL_SIZE,
        HEADER_ORIGINAL_SHA256,
    }
) - {HEADER_FIRST_SEEN, HEADER_ATTEMPTS}
# Routing headers of the event a record carries, made again for an edited body.
EVENT_HEADERS = frozenset({"event_type", "schema_version", "correlation_id"})


class UnknownDlqTopic(PermanentError):
    public = True
    code = Code.NOT_FOUND


class DeadLetterNotFound(PermanentError):
    public = True
    code = Code.NOT_FOUND


class DeadLetterSettled(PermanentError):
    public = True
    code = Code.DEAD_LETTER_SETTLED


class InvalidReplay(PermanentError):
    """An edited body that is no valid event for the original topic; nothing is sent."""

    public = True
    code = Code.INVALID_REPLAY


@dataclass(frozen=True)
class DlqTopic:
    name: str
    original_topic: str
    messages: int  # retained on the cluster now
    pending: int  # of those, neither replayed nor discarded


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    error: str
    stage: str
    original_topic: str
    first_seen: datetime | None
    attempts: int
    state: str
    actions: list[ActionRecord] = field(default_factory=list)
    raw_headers: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    @property
    def ref(self) -> str:
        return f"{self.partition}-{self.offset}"

    @property
    def truncated(self) -> bool:
        return self.headers.get(HEADER_TRUNCATED) == "true"

    @property
    def pretty(self) -> str:
        """Indented JSON when the body is JSON, else its text with bad bytes escaped."""
        text = self.value.decode("utf-8", errors="backslashreplace")
        try:
            return json.dumps(json.loads(self.value), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            return text


def dead_letter_from(
    record: ConsumerRecord[bytes, bytes], original_topic: str, settled: Doc | None
) -> DeadLetter:
    raw = tuple((k, bytes(v or b"")) for k, v in (record.headers or ()))
    headers = {k: v.decode("utf-8", errors="replace") for k, v in raw}
    attempts = headers.get(HEADER_ATTEMPTS, "")
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        key=record.key,
        value=record.value or b"",
        headers=headers,
        error=headers.get(HEADER_ERROR, ""),
        stage=headers.get(HEADER_STAGE, ""),
        original_topic=original_topic,
        first_seen=_instant(headers.get(HEADER_FIRST_SEEN)),
        attempts=int(attempts) if attempts.isdigit() else 1,
        state=str(settled["action"]) if settled else PENDING,
        actions=[action_record(settled)] if settled else [],
        raw_headers=raw,
    )


def action_record(doc: Mapping[str, Any]) -> ActionRecord:
    return ActionRecord(doc["at"], str(doc["actor"]), str(doc["action"]), str(doc["detail"]))


def replay_headers(
    raw: tuple[tuple[str, bytes], ...], routing: list[tuple[str, bytes]] | None = None
) -> list[tuple[str, bytes]]:
    """The original record's headers: the DLQ's own taken off, ``first_seen`` and
    ``attempts`` kept; ``routing``, an edited body's event headers, in place of the old."""
    drop = STRIPPED_HEADERS | (EVENT_HEADERS if routing is not None else frozenset())
    return [(k, v) for k, v in raw if k not in drop] + list(routing or [])


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _doc_id(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


class DeadLetterOps:
    def __init__(
        self, settings: Settings, db: AsyncDatabase[Doc], *, read_timeout_s: float = 10.0
    ) -> None:
        self._settings = settings
        self._actions = db[DLQ_ACTIONS]
        self._read_timeout_s = read_timeout_s
        self._by_dlq: dict[str, Topic] = {t.dlq_name(settings.topic_prefix): t for t in TOPICS}
        # Dead letters may be twice the event limit (the DLQ producer's request size).
        self._max_bytes = max(settings.max_message_bytes * 2, 1024 * 1024)

    def original(self, dlq_topic: str) -> Topic:
        """The registry topic a DLQ belongs to; UnknownDlqTopic for any other name."""
        try:
            return self._by_dlq[dlq_topic]
        except KeyError:
            raise UnknownDlqTopic(f"no dead-letter topic {dlq_topic!r}") from None

    async def topics(self) -> list[DlqTopic]:
        partitions = await cluster_partitions(self._settings, self._by_dlq)
        names = [name for name in self._by_dlq if name in partitions]
        tps = [TopicPartition(name, p) for name in names for p in partitions[name]]
        async with self._consumer() as consumer:
            begin = await consumer.beginning_offsets(tps) if tps else {}
            end = await consumer.end_offsets(tps) if tps else {}
        settled: dict[str, int] = {}
        async for doc in self._actions.find({"topic": {"$in": names}}):
            tp = TopicPartition(doc["topic"], int(doc["partition"]))
            # A settled message the broker has since deleted is no longer among the counted.
            if begin.get(tp, 0) <= int(doc["offset"]) < end.get(tp, 0):
                settled[tp.topic] = settled.get(tp.topic, 0) + 1
        out = []
        for name in names:
            messages = sum(end[tp] - begin[tp] for tp in tps if tp.topic == name)
            pending = max(messages - settled.get(name, 0), 0)
            original = self._by_dlq[name].full_name(self._settings.topic_prefix)
            out.append(DlqTopic(name, original, messages, pending))
        return out

    async def list(self, dlq_topic: str, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, oldest first (by time, then place)."""
        topic = self.original(dlq_topic)
        partitions = (await cluster_partitions(self._settings, [dlq_topic])).get(dlq_topic)
        if not partitions:
            return []
        tps = [TopicPartition(dlq_topic, p) for p in partitions]
        async with self._consumer() as consumer:
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            # The oldest ``limit`` overall are among the first ``limit`` of each partition.
            records: Records = await self._read(consumer, begin, end, limit)
        records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        records = records[:limit]
        settled = await self._settled(dlq_topic, [(r.partition, r.offset) for r in records])
        original = topic.full_name(self._settings.topic_prefix)
        return [
            dead_letter_from(r, original, settled.get((r.partition, r.offset))) for r in records
        ]

    async def get(self, dlq_topic: str, partition: int, offset: int) -> DeadLetter | None:
        topic = self.original(dlq_topic)
        partitions = (await cluster_partitions(self._settings, [dlq_topic])).get(dlq_topic)
        if partition not in (partitions or ()):
            return None
        tp = TopicPartition(dlq_topic, partition)
        async with self._consumer() as consumer:
            begin = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            if not begin <= offset < end:
                return None
            records = await self._read(consumer, {tp: offset}, {tp: offset + 1}, 1)
        found = [r for r in records if r.offset == offset]
        if not found:
            return None
        settled = await self._settled(dlq_topic, [(partition, offset)])
        original = topic.full_name(self._settings.topic_prefix)
        return dead_letter_from(found[0], original, settled.get((partition, offset)))

    async def replay(
        self,
        dlq_topic: str,
        partition: int,
        offset: int,
        actor: Actor,
        body: bytes | None = None,
    ) -> DeadLetter:
        """Send the message (or ``body``, its edited version, validated first) to its
        original topic with its original key; record who did it."""
        letter = await self._pending(dlq_topic, partition, offset)
        topic = self.original(dlq_topic)
        target = topic.full_name(self._settings.topic_prefix)
        key = letter.key
        codec = Codec.for_topic(topic, self._settings.max_message_bytes)
        if body is None:
            if letter.truncated:
                raise InvalidReplay(
                    "the dead letter holds only the first bytes of a message too large to "
                    "copy whole; replay it with the whole event as an edited body"
                )
            value, headers = letter.value, replay_headers(letter.raw_headers)
            detail = f"replayed to {target}"
            try:
                # A readable event goes back under its own key (consumers refuse any other:
                # a wrong or missing key may be why it was dead-lettered).
                key = topic.key_for(codec.decode(RawMessage(target, value, key)))
            except (DecodeError, ValueError):
                pass  # unreadable as it was: replayed as it was
        else:
            try:
                event = codec.decode(RawMessage(target, body, key))
            except DecodeError as exc:
                raise InvalidReplay(f"the edited event is not valid: {exc.reason}") from exc
            value, headers = body, replay_headers(letter.raw_headers, event_headers(event))
            key = topic.key_for(event)
            detail = f"replayed to {target} with an edited body"
        doc = await self._claim(letter, REPLAYED, actor, detail)
        try:
            await self._produce(target, value, key, headers)
        except Exception as exc:
            # Not sent, so not settled: the operator may try again.
            await self._actions.delete_one({"_id": doc["_id"]})
            raise TransientError(f"could not send the message to {target}: {exc!r}") from exc
        return replace(letter, state=REPLAYED, actions=[action_record(doc)])

    async def discard(
        self, dlq_topic: str, partition: int, offset: int, actor: Actor
    ) -> DeadLetter:
        letter = await self._pending(dlq_topic, partition, offset)
        doc = await self._claim(letter, DISCARDED, actor, "discarded")
        return replace(letter, state=DISCARDED, actions=[action_record(doc)])

    async def _pending(self, dlq_topic: str, partition: int, offset: int) -> DeadLetter:
        letter = await self.get(dlq_topic, partition, offset)
        if letter is None:
            raise DeadLetterNotFound(f"no dead letter {partition}-{offset} on {dlq_topic!r}")
        if letter.state != PENDING:
            raise DeadLetterSettled(f"the dead letter {letter.ref} was already {letter.state}")
        return letter

    async def _claim(self, letter: DeadLetter, action: str, actor: Actor, detail: str) -> Doc:
        doc: Doc = {
            "_id": _doc_id(letter.topic, letter.partition, letter.offset),
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "action": action,
            "actor": actor.label,
            "actor_key_id": actor.key_id,
            "at": datetime.now(UTC),
            "detail": detail,
        }
        try:
            await self._actions.insert_one(doc)
        except DuplicateKeyError:
            raise DeadLetterSettled(
                f"the dead letter {letter.ref} was settled by someone else just now"
            ) from None
        return doc

    async def _settled(
        self, dlq_topic: str, places: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], Doc]:
        if not places:
            return {}
        ids = [_doc_id(dlq_topic, p, o) for p, o in places]
        found = self._actions.find({"_id": {"$in": ids}})
        return {(int(d["partition"]), int(d["offset"])): d async for d in found}

    async def _produce(
        self, topic: str, value: bytes, key: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id="tapedeck-ops",
            acks="all",
            enable_idempotence=True,
            max_request_size=self._max_bytes + 64 * 1024,
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        finally:
            await producer.stop()

    @asynccontextmanager
    async def _consumer(self) -> AsyncIterator[AIOKafkaConsumer]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id="tapedeck-ops",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=self._max_bytes + 64 * 1024,
        )
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    async def _read(
        self,
        consumer: AIOKafkaConsumer,
        starts: Mapping[TopicPartition, int],
        stops: Mapping[TopicPartition, int],
        per_partition: int,
    ) -> Records:
        """Up to ``per_partition`` records of each partition from its start offset to
        before its stop offset, or what arrived before the time bound."""
        active = {tp for tp, start in starts.items() if start < stops[tp]}
        if not active:
            return []
        consumer.assign(sorted(active, key=lambda tp: tp.partition))
        for tp in active:
            consumer.seek(tp, starts[tp])
        got: dict[TopicPartition, Records] = {tp: [] for tp in active}
        deadline = time.monotonic() + self._read_timeout_s
        while active and time.monotonic() < deadline:
            wait_ms = max(int(min(deadline - time.monotonic(), 0.5) * 1000), 1)
            batch = await consumer.getmany(timeout_ms=wait_ms)
            for tp, records in batch.items():
                for record in records:
                    if tp in active and record.offset < stops[tp]:
                        got[tp].append(record)
                    if len(got[tp]) >= per_partition or record.offset + 1 >= stops[tp]:
                        active.discard(tp)
            for tp in list(active):
                if await consumer.position(tp) >= stops[tp]:
                    active.discard(tp)
            done = set(consumer.assignment()) - active
            if done:
                consumer.pause(*done)
        return [record for records in got.values() for record in records]
