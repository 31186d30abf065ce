"""Commits never pass an event still in hand, whatever order a stage's concurrent handlers
ack in. Faust's own consumer commits past it; these drive the real consumer's bookkeeping
(track_message, ack, the committable offsets) without a broker."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from faust.types import TP, Message

from services.common.faust_commit import App, below, lowest_in_hand

TOPIC = "tapedeck.clip.requests"
TP0, TP1 = TP(TOPIC, 0), TP(TOPIC, 1)


async def ignore(message: Message) -> None:
    return None


async def consumer(app: faust.App) -> Any:
    # Acks count for topics the app consumes, as the conductor knows them once started.
    conductor: Any = app.topics
    conductor.add(app.topic(TOPIC))
    await conductor._update_indices()
    return app.transport.create_consumer(
        callback=ignore,
        on_partitions_revoked=lambda revoked: None,
        on_partitions_assigned=lambda assigned: None,
    )


def message(tp: TP, offset: int) -> Message:
    return Message(tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v", None, tp=tp)


def deliver(c: Any, tp: TP, offsets: range) -> list[Message]:
    """As the conductor does before handing messages to the stage's streams."""
    out = [message(tp, o) for o in offsets]
    for m in out:
        c.track_message(m)
    return out


@pytest.fixture
def app() -> faust.App:
    return App("tapedeck-commit-test", broker="kafka://127.0.0.1:1", autodiscover=False)


async def test_a_new_partition_is_not_committed_past_its_first_event_in_hand(
    app: faust.App,
) -> None:
    c = await consumer(app)
    first, *rest = deliver(c, TP0, range(4))
    for m in rest:  # 1-3 handled by the other handlers, 0 still under way
        c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {}
    c.ack(first)
    assert c._filter_committable_offsets([TP0]) == {TP0: 4}


async def test_faust_alone_commits_past_it(app: faust.App) -> None:
    """Why the consumer above exists: Faust's own skips the event in hand."""
    plain = faust.App("tapedeck-commit-test-plain", broker="kafka://127.0.0.1:1",
                      autodiscover=False)  # fmt: skip
    c = await consumer(plain)
    _first, *rest = deliver(c, TP0, range(4))
    for m in rest:
        c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {TP0: 4}


async def test_after_a_commit_the_next_event_in_hand_holds_it(app: faust.App) -> None:
    c = await consumer(app)
    for m in deliver(c, TP0, range(4)):
        c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {TP0: 4}
    c._committed_offset[TP0] = 4
    in_hand, *done = deliver(c, TP0, range(4, 7))
    for m in done:
        c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {}
    c.ack(in_hand)
    assert c._filter_committable_offsets([TP0]) == {TP0: 7}


async def test_partitions_are_held_apart(app: faust.App) -> None:
    c = await consumer(app)
    a = deliver(c, TP0, range(3))
    b = deliver(c, TP1, range(3))
    for m in [*a[:2], *b[1:]]:  # partition 0: 2 in hand; partition 1: 0 in hand
        c.ack(m)
    assert c._filter_committable_offsets([TP0, TP1]) == {TP0: 2}
    c.ack(b[0])
    assert c._filter_committable_offsets([TP0, TP1]) == {TP1: 3}


def test_lowest_in_hand_and_below() -> None:
    ms = [message(TP0, 5), message(TP0, 3), message(TP1, 9)]
    ms[1].acked = True
    assert lowest_in_hand(ms) == {TP0: 5, TP1: 9}
    assert below([1, 2, 5, 6], 5) == ([1, 2], [5, 6])
    assert below([1, 2], None) == ([1, 2], [])
