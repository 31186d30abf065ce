"""Acks in offset order: a finished event waits for every earlier one of its partition."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from services.common.ack_order import AckOrder

P, Q = ("t", 0), ("t", 1)


def test_an_event_finished_early_waits_for_the_one_before_it() -> None:
    order: AckOrder[str] = AckOrder()
    first, second, third = (order.begin(f"e{n}", P, n) for n in (10, 11, 12))
    assert order.finish(second) == []
    assert order.finish(third) == []
    assert order.waiting(P) == 3
    assert order.finish(first) == ["e10", "e11", "e12"]
    assert order.waiting(P) == 0


def test_partitions_do_not_hold_each_other_back() -> None:
    order: AckOrder[str] = AckOrder()
    slow = order.begin("p5", P, 5)
    other = order.begin("q7", Q, 7)
    assert order.finish(other) == ["q7"]
    assert order.finish(slow) == ["p5"]


def test_order_is_by_offset_not_by_arrival() -> None:
    order: AckOrder[str] = AckOrder()
    later = order.begin("e4", P, 4)  # its actor got here first
    earlier = order.begin("e3", P, 3)
    assert order.finish(later) == []
    assert order.finish(earlier) == ["e3", "e4"]


def test_an_event_never_finished_holds_back_what_follows() -> None:
    order: AckOrder[str] = AckOrder()
    order.begin("stuck", P, 0)  # its handling was cancelled: never finished
    after = [order.begin(f"e{n}", P, n) for n in (1, 2)]
    assert [order.finish(t) for t in after] == [[], []]
    assert order.waiting(P) == 3


def test_a_rebalance_drops_what_was_in_hand_and_its_redelivery_is_acked() -> None:
    order: AckOrder[str] = AckOrder()
    stuck = order.begin("old0", P, 0)
    old1 = order.begin("old1", P, 1)
    order.rebalanced()
    # Seeked back to the committed offset: both come again.
    again0, again1 = order.begin("new0", P, 0), order.begin("new1", P, 1)
    assert order.finish(old1) == []  # from before the rebalance: never acked
    assert order.finish(again1) == []
    assert order.finish(again0) == ["new0", "new1"]
    assert order.finish(stuck) == []
    assert order.waiting(P) == 0


@given(st.integers(1, 40), st.randoms(use_true_random=False))
def test_acks_are_always_a_prefix_of_the_offsets_handed_out(n: int, rnd: random.Random) -> None:
    order: AckOrder[int] = AckOrder()
    tickets = [order.begin(o, P, o) for o in range(n)]
    acked: list[int] = []
    finished: set[int] = set()
    for ticket in rnd.sample(tickets, n):
        acked += order.finish(ticket)
        finished.add(ticket.offset)
        # Never an offset whose predecessors are not all finished.
        assert acked == list(range(len(acked)))
        assert all(o in finished for o in acked)
        assert len(acked) == next((o for o in range(n) if o not in finished), n)
    assert acked == list(range(n))
