"""Commits never pass an event still in hand, whatever order a stage's concurrent handlers
ack in. Faust's own consumer commits past it; these drive the real consumer's bookkeeping
(track_message, ack, the committable offsets) without a broker."""

from __future__ import annotations

import gc
from typing import Any

import faust
import pytest
from faust.types import TP, Message
from intervaltree import Interval

from services.common.faust_commit import App, covered, start_of_run

TOPIC = "tapedeck.clip.requests"
TP0, TP1 = TP(TOPIC, 0), TP(TOPIC, 1)


async def ignore(message: Message) -> None:
    return None


async def rebalanced(tps: set[TP]) -> None:
    return None


async def consumer(app: faust.App) -> Any:
    # Acks count for topics the app consumes, as the conductor knows them once started.
    conductor: Any = app.topics
    conductor.add(app.topic(TOPIC))
    await conductor._update_indices()
    return app.transport.create_consumer(
        callback=ignore,
        on_partitions_revoked=rebalanced,
        on_partitions_assigned=rebalanced,
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


async def test_an_event_whose_handling_was_cancelled_still_holds_the_commit(
    app: faust.App,
) -> None:
    """Faust keeps unacked messages in a WeakSet: once the cancelled handler let go of its
    event, nothing there remembered it. The run's start does."""
    c = await consumer(app)
    c._committed_offset[TP0] = 10
    ms = deliver(c, TP0, range(10, 13))
    for m in ms[1:]:
        c.ack(m)
    del ms
    gc.collect()
    assert c._filter_committable_offsets([TP0]) == {}


async def test_faust_alone_commits_past_a_committed_partitions_event_in_hand() -> None:
    plain = faust.App("tapedeck-commit-test-plain2", broker="kafka://127.0.0.1:1",
                      autodiscover=False)  # fmt: skip
    c = await consumer(plain)
    c._committed_offset[TP0] = 10
    _in_hand, *done = deliver(c, TP0, range(10, 13))
    for m in done:
        c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {TP0: 13}


async def test_acks_behind_the_committed_offset_neither_hold_nor_move_it(
    app: faust.App,
) -> None:
    c = await consumer(app)
    c._committed_offset[TP0] = 20
    c._acked[TP0].extend([12, 13])  # handled here after another owner committed past them
    (m,) = deliver(c, TP0, range(20, 21))
    c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {TP0: 21}


async def test_a_revoked_partitions_late_acks_are_not_committed(app: faust.App) -> None:
    c = await consumer(app)
    ms = deliver(c, TP0, range(3))
    await c.on_partitions_revoked({TP0})
    for m in ms:
        c.ack(m)
    assert c._filter_committable_offsets([TP0]) == {}


def test_start_of_run_and_gaps() -> None:
    assert start_of_run(7, 3) == 7 and start_of_run(None, 3) == 3
    assert start_of_run(None, None) is None
    assert covered(5, 5, []) and not covered(5, 6, []) and not covered(5, 4, [])
    # 5-7 were never in the log (a gap Faust recorded): a run may open at 8.
    assert covered(5, 8, [Interval(5, 8)]) and not covered(5, 9, [Interval(5, 8)])
