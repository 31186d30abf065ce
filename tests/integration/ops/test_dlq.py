"""Dead letters on real Kafka: written the way every stage writes them, then listed,
read, replayed (as they were, or edited) and discarded, with the state in MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import TOPICS, encode_event
from schemas.dlq import HEADER_ATTEMPTS, HEADER_FIRST_SEEN
from services.common.codec import RawMessage, dead_letter_headers
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.mongo import Doc, open_database
from services.common.settings import Settings
from services.ops.actions import Actor
from services.ops.dlq import DeadLetterOps, DeadLetterSettled, InvalidReplay
from tests.support.events import clip_request
from tests.support.kafka import read

OPERATOR = Actor("abc123def456", "night-shift")
BROKEN = b'{"event_type": "clip.requested", "request_id": '


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Doc]]:
    async with open_database(settings, "tests-ops") as database:
        yield database


async def dead_letter(settings: Settings, value: bytes, key: bytes, offset: int) -> None:
    """What a stage does with a message it cannot decode."""
    original = TOPICS.clip_requests.full_name(settings.topic_prefix)
    msg = RawMessage(original, value, key, partition=0, offset=offset)
    headers = dead_letter_headers(msg, error="not valid JSON", stage="clip", exception="E")
    async with KafkaEmitter(settings, "tests-stage") as emitter:
        await emitter.dead_letter(msg, headers)


async def test_list_get_replay_and_discard(settings: Settings, db: AsyncDatabase[Doc]) -> None:
    await ensure_topics(settings)
    good = encode_event(clip_request(request_id="r-2"))
    await dead_letter(settings, BROKEN, b"r-1", 10)
    # Valid but under a wrong key (consumers refuse it): replayed under its own.
    await dead_letter(settings, good, b"wrong-key", 11)
    await dead_letter(settings, b"\xff\xfe not text", b"r-3", 12)
    ops = DeadLetterOps(settings, db)
    dlq = TOPICS.clip_requests.dlq_name(settings.topic_prefix)
    original = TOPICS.clip_requests.full_name(settings.topic_prefix)

    listed = {t.name: t for t in await ops.topics()}
    assert listed[dlq].original_topic == original
    assert (listed[dlq].messages, listed[dlq].pending) == (3, 3)
    assert listed[TOPICS.merge_requests.dlq_name(settings.topic_prefix)].messages == 0

    letters = await ops.list(dlq)
    assert [lt.key for lt in letters] == [b"r-1", b"wrong-key", b"r-3"]
    first, second, third = letters
    assert (first.error, first.stage, first.attempts) == ("not valid JSON", "clip", 1)
    assert first.original_topic == original and first.first_seen is not None
    assert first.value == BROKEN and first.state == "pending" and first.actions == []
    assert '"request_id": "r-2"' in second.pretty and "\\xff\\xfe" in third.pretty
    assert len(await ops.list(dlq, limit=2)) == 2
    again = await ops.get(dlq, second.partition, second.offset)
    assert again is not None and again.value == good
    assert await ops.get(dlq, second.partition, 10_000) is None

    # An edited body that is still no clip request: refused with the reason, nothing sent.
    with pytest.raises(InvalidReplay, match="not valid") as refused:
        await ops.replay(dlq, first.partition, first.offset, OPERATOR, b'{"event_type": "x"}')
    assert refused.value.code == "invalid_replay" and refused.value.public
    assert await read(settings, original, 1, timeout_s=3) == []
    assert (await ops.get(dlq, first.partition, first.offset)).state == "pending"  # type: ignore[union-attr]

    fixed = encode_event(clip_request(request_id="r-1"))
    done = await ops.replay(dlq, first.partition, first.offset, OPERATOR, fixed)
    assert done.state == "replayed" and done.actions[0].actor == OPERATOR.label
    kept = await ops.replay(dlq, second.partition, second.offset, OPERATOR)
    assert kept.state == "replayed"
    sent = await read(settings, original, 2, timeout_s=15)
    assert sorted((r.key, r.value) for r in sent) == [(b"r-1", fixed), (b"r-2", good)]
    for record in sent:
        headers = dict(record.headers)
        assert headers[HEADER_FIRST_SEEN] and headers[HEADER_ATTEMPTS] == b"1"
        assert "error" not in headers and "stage" not in headers
        assert "original_offset" not in headers
    edited = next(r for r in sent if r.key == b"r-1")
    assert dict(edited.headers)["event_type"] == b"clip.requested"

    # If the replayed message fails again, its dead letter counts the second attempt.
    replayed = next(r for r in sent if r.key == b"r-2")
    msg = RawMessage(original, replayed.value, replayed.key, tuple(replayed.headers), 0, 0)
    failed_again = dict(dead_letter_headers(msg, error="e", stage="clip", exception="E"))
    assert failed_again[HEADER_ATTEMPTS] == b"2"
    assert failed_again[HEADER_FIRST_SEEN] == dict(replayed.headers)[HEADER_FIRST_SEEN]

    with pytest.raises(DeadLetterSettled):
        await ops.replay(dlq, second.partition, second.offset, OPERATOR)
    gone = await ops.discard(dlq, third.partition, third.offset, OPERATOR)
    assert gone.state == "discarded"
    with pytest.raises(DeadLetterSettled):
        await ops.discard(dlq, third.partition, third.offset, OPERATOR)

    states = {lt.key: lt.state for lt in await ops.list(dlq)}
    assert states == {b"r-1": "replayed", b"wrong-key": "replayed", b"r-3": "discarded"}
    recorded = await db["dlq_actions"].find({"topic": dlq}).to_list()
    assert sorted(d["action"] for d in recorded) == ["discarded", "replayed", "replayed"]
    assert all(d["actor_key_id"] == OPERATOR.key_id and d["at"] for d in recorded)
    assert {t.name: t.pending for t in await ops.topics()}[dlq] == 0
