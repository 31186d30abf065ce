"""Bad events on every public topic whose consumer lives here: each record of the corpus
lands in the topic's DLQ, bytes and key unchanged, with the reason, and the consumer goes
on to the next offset: a valid event produced after them is handled.

Each stage's Faust app runs in this process against the real stack (as the stages'
integration tests run them), all of them for the whole module, under one isolated set of
names. Every record goes to partition 0, so "after" means a higher offset there.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord

from schemas import TOPICS, Topic, encode_event
from schemas.dlq import HEADER_ORIGINAL_OFFSET, HEADER_ORIGINAL_PARTITION, HEADER_TRUNCATED
from schemas.example_events import EXAMPLES
from schemas.names import Stage
from services.common.kafka import ensure_topics
from services.common.ledger import COLLECTION as LEDGER
from services.common.mongo import connect, database
from services.common.settings import Settings
from services.lifecycle.app import STAGE as LIFECYCLE_STAGE
from tests.support.isolated import isolated_names
from tests.support.kafka import read

# Which service consumes each topic and dead-letters what it cannot read. A topic added
# to the registry fails test_every_topic_is_placed until it is placed here or below.
CONSUMER = {
    TOPICS.clip_requests.name: "clipper",
    TOPICS.audio_jobs.name: "audio_agent",
    TOPICS.merge_requests.name: "merger",
    TOPICS.jobs_requests.name: "lifecycle",
    TOPICS.video_results.name: "lifecycle",
    TOPICS.audio_results.name: "lifecycle",
    TOPICS.merge_results.name: "lifecycle",
    TOPICS.jobs_results.name: "webhooks",
}
NO_CONSUMER_HERE = {
    TOPICS.video_jobs.name: "read by the video renderer, outside this repository",
    TOPICS.clip_results.name: "read only by the submitters' results listeners, which have no "
    "consumer group and own nothing to dead-letter (tests/integration/submitter/test_listener.py)",
}
# The ledger's stage name per service, where the stage runner keeps one: a handled event
# leaves its record there.
LEDGER_STAGE = {"clipper": Stage.CLIP, "audio_agent": Stage.AUDIO, "merger": Stage.MERGE,
                "lifecycle": LIFECYCLE_STAGE}  # fmt: skip
HANDLED_WITHIN_S = 90.0


@pytest.fixture(autouse=True)
def _no_faults_left() -> None:
    """Replaces the fault rig's fixture of this name: nothing here injects a fault, so
    these tests run on the shared stack without the rig."""


def test_every_topic_is_placed() -> None:
    assert set(CONSUMER) | set(NO_CONSUMER_HERE) == {t.name for t in TOPICS}
    assert not set(CONSUMER) & set(NO_CONSUMER_HERE)


# -- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    name: str
    value: bytes | None
    key: bytes | None


def fresh(topic: Topic, event_type: str | None = None) -> dict[str, Any]:
    """The example of the topic's first event type (or ``event_type``), with new ids."""
    etype = event_type or topic.event_types[0]
    example = EXAMPLES[(etype, 1)]
    body: dict[str, Any] = json.loads(encode_event(example))
    body["event_id"] = str(uuid.uuid4())
    key_field = TOPICS.for_event(etype).key_field
    body[key_field] = f"{key_field.split('_')[0]}-{uuid.uuid4().hex[:10]}"
    return body


def as_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def key_of(topic: Topic, body: dict[str, Any]) -> bytes:
    return str(body[topic.key_field]).encode()


def corpus(topic: Topic, broker_max: int) -> list[Bad]:
    good = fresh(topic)
    key = key_of(topic, good)

    def changed(**fields: Any) -> bytes:
        body = fresh(topic)
        body.update(fields)
        return as_bytes(body)

    def without(field: str) -> bytes:
        body = fresh(topic)
        del body[field]
        return as_bytes(body)

    other = next(t for t in TOPICS if t is not topic and t.key_field == topic.key_field)
    stray = fresh(other)
    traversal = {topic.key_field: "../../etc"}
    # As large as the broker takes: room left for the record's framing and its key.
    padding = "x" * (broker_max - len(as_bytes(good)) - 4096)
    return [
        Bad("malformed JSON", b'{"event_type": ', key),
        Bad("not UTF-8", b"\xff\xfe\xfa\x00{}", key),
        Bad("empty value", b"", key),
        Bad("JSON but not an object", b"[1, 2, 3]", key),
        Bad("JSON null", b"null", key),
        Bad("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, key),
        Bad("wrong type: key field a number", changed(**{topic.key_field: 12345}), key),
        Bad("wrong type: schema_version a string", changed(schema_version="1"), key),
        Bad("wrong type: tenant_id an object", changed(tenant_id={"$ne": None}), key),
        Bad("naive occurred_at", changed(occurred_at="2025-01-15T12:00:00"), key),
        Bad("path traversal in the key field", changed(**traversal), b"../../etc"),
        Bad("missing tenant_id", without("tenant_id"), key),
        Bad("extra field", changed(surprise=True), key),
        Bad("unknown schema_version", changed(schema_version=99), key),
        Bad("unknown event_type", changed(event_type="tapedeck.nothing"), key),
        Bad("at the broker's maximum size", changed(padding=padding), key),
        Bad("tombstone", None, key),
        Bad("valid event without a key", as_bytes(good), None),
        Bad("valid event under another key", as_bytes(fresh(topic)), b"someone-else"),
        Bad("valid event of another topic", as_bytes(stray), key_of(other, stray)),
    ]


# -- the stages, started once for the module ---------------------------------------------------


@pytest.fixture(scope="module")
def names(stack: Settings) -> Iterator[Settings]:
    # Per module: each stage's app takes seconds to join its group.
    with isolated_names(stack) as s:
        yield s


def build_apps(s: Settings) -> dict[str, Any]:
    from services.audio_agent.app import build_app as audio_agent
    from services.audio_agent.settings import AudioAgentSettings
    from services.clipper.app import build_app as clipper
    from services.clipper.settings import ClipperSettings
    from services.lifecycle.app import build_app as lifecycle
    from services.lifecycle.settings import LifecycleSettings
    from services.merger.app import build_app as merger
    from services.merger.settings import MergerSettings
    from services.webhooks.app import build_app as webhooks
    from services.webhooks.settings import WebhookSettings

    base = s.model_dump()
    return {
        "clipper": clipper(ClipperSettings.model_construct(**base, clipper_web_port=None)),
        "audio_agent": audio_agent(AudioAgentSettings.model_construct(**base, audio_web_port=None)),
        "merger": merger(MergerSettings.model_construct(**base, merger_web_port=None)),
        "lifecycle": lifecycle(LifecycleSettings.model_construct(**base, lifecycle_web_port=None)),
        "webhooks": webhooks(WebhookSettings.model_construct(**base, webhook_web_port=None)),
    }


@pytest.fixture(scope="module")
async def apps(names: Settings) -> AsyncIterator[dict[str, Any]]:
    await ensure_topics(names)
    started = build_apps(names)
    try:
        for app in started.values():
            await app.start()
        yield started
    finally:
        for app in started.values():
            await app.stop()


@pytest.fixture(scope="module")
async def broker_max(names: Settings) -> int:
    """The largest record the broker takes on the stage topics (``max.message.bytes``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=names.kafka_bootstrap)
    await admin.start()
    try:
        topic = TOPICS.clip_requests.full_name(names.topic_prefix)
        await ensure_topics(names, [TOPICS.clip_requests])
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})]
        )
        for _, _, _, _, entries in described.resources:
            for name, value, *_ in entries:
                if name == "max.message.bytes":
                    return int(value)
    finally:
        await admin.close()
    raise AssertionError("the broker did not say its max.message.bytes")


# -- the test -----------------------------------------------------------------------------------


async def send(s: Settings, topic: str, records: list[tuple[bytes | None, bytes | None]],
               max_request: int) -> list[int]:  # fmt: skip
    """Produce each (value, key) to partition 0 in order; their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap,
                                max_request_size=max_request + 64 * 1024)  # fmt: skip
    await producer.start()
    try:
        offsets = []
        for value, key in records:
            meta = await producer.send_and_wait(topic, value=value, key=key, partition=0)
            offsets.append(meta.offset)
        return offsets
    finally:
        await producer.stop()


async def committed(s: Settings, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topic, 0)
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
        meta = offsets.get(tp)
        return meta.offset if meta is not None else -1
    finally:
        await admin.close()


async def until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.5)


def dead_letters_of(records: list[ConsumerRecord[bytes, bytes]]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for r in records:
        headers = dict(r.headers)
        if headers.get(HEADER_ORIGINAL_PARTITION) == b"0":
            out[int(headers[HEADER_ORIGINAL_OFFSET])] = (r, headers)
    return out


@pytest.mark.parametrize("topic_name", sorted(CONSUMER))
async def test_every_bad_event_is_dead_lettered_and_the_consumer_goes_on(
    names: Settings, apps: dict[str, Any], broker_max: int, topic_name: str
) -> None:
    topic = TOPICS[topic_name]
    service = CONSUMER[topic_name]
    full = topic.full_name(names.topic_prefix)
    bad = corpus(topic, broker_max)
    marker = fresh(topic)
    offsets = await send(names, full, [(b.value, b.key) for b in bad]
                         + [(as_bytes(marker), key_of(topic, marker))], broker_max)  # fmt: skip
    *bad_offsets, marker_offset = offsets

    # The consumer went past every bad record and the valid one behind them...
    group = apps[service].conf.id  # Faust's consumer group is the app id

    async def past_marker() -> bool:
        return await committed(names, group, full) > marker_offset

    await until(past_marker, HANDLED_WITHIN_S, f"{service} commits past the valid event")
    # ... and handled the valid one (the stage runner's ledger has it).
    if service in LEDGER_STAGE:
        mongo = connect(names)
        try:
            ledger = database(mongo, names)[LEDGER]
            _id = f"{LEDGER_STAGE[service]}:{marker['event_id']}"
            assert await ledger.find_one({"_id": _id}) is not None, (
                "the valid event was not handled"
            )
        finally:
            await mongo.close()

    dlq = dead_letters_of(await read(names, topic.dlq_name(names.topic_prefix),
                                     len(bad), timeout_s=30, settle_s=0.5))  # fmt: skip
    assert marker_offset not in dlq, "the valid event was dead-lettered"
    missing = [b.name for b, o in zip(bad, bad_offsets, strict=True) if o not in dlq]
    assert not missing, f"not dead-lettered: {missing}"
    for b, offset in zip(bad, bad_offsets, strict=True):
        record, headers = dlq[offset]
        assert headers["error"] and headers["stage"], b.name
        assert record.key == b.key, b.name
        if HEADER_TRUNCATED in headers:
            assert b.value is not None and len(b.value) > 1024 * 1024, b.name
            assert record.value == b.value[: len(record.value)], b.name
        else:
            assert record.value == b.value, b.name
    reasons = {b.name: dlq[o][1]["error"].decode() for b, o in zip(bad, bad_offsets, strict=True)}
    print(f"\n{topic_name} -> {service}:")
    for name, reason in reasons.items():
        print(f"  {name}: {reason[:140]}")
    assert "no key" in reasons["valid event without a key"]
    assert "is not the event's" in reasons["valid event under another key"]
    assert "does not belong on topic" in reasons["valid event of another topic"]
    assert "exceeds" in reasons["at the broker's maximum size"]
    assert "tombstone" in reasons["tombstone"]
