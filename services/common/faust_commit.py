"""Offset commits that never pass an event still in hand.

A stage handles several events of a partition at once (agent concurrency), so they finish,
and are acked, out of order. Faust commits the first run of consecutive acked offsets,
guarded only by "the run starts at most one past the committed offset", a guard it skips
while nothing is committed yet (a new partition, a new group): with offset 0 still being
handled and 1-3 done, it commits 4, and a worker that dies then leaves event 0 to nobody.
With a commit at 4 and 4 in hand, 5-6 done, it commits 7 all the same.

Here the commit stops below the lowest offset the consumer gave out and nobody acked yet,
so whatever a stopped or killed worker had in hand goes to the partition's next owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP


def lowest_in_hand(messages: Iterable[Any]) -> dict[TP, int]:
    """Per partition, the lowest offset among ``messages`` not acked yet."""
    floors: dict[TP, int] = {}
    for message in messages:
        if message.acked:
            continue
        tp, offset = message.tp, message.offset
        if offset < floors.get(tp, offset + 1):
            floors[tp] = offset
    return floors


def below(acked: list[int], floor: int | None) -> tuple[list[int], list[int]]:
    """``acked`` split into the offsets a commit may cover and those it must hold back."""
    if floor is None:
        return acked, []
    return [o for o in acked if o < floor], [o for o in acked if o >= floor]


class Consumer(driver.Consumer):
    _floors: dict[TP, int] | None = None

    def _filter_committable_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        # Faust's own WeakSet of messages handed to streams and not acked yet; copied
        # first, as another thread may add to it.
        self._floors = lowest_in_hand(list(self._unacked_messages))
        try:
            return dict(super()._filter_committable_offsets(tps))
        finally:
            self._floors = None

    def _new_offset(self, tp: TP) -> int | None:
        floors = self._floors
        floor = None if floors is None else floors.get(tp)
        acked = self._acked[tp]
        allowed, held = below(acked, floor)
        if not held:
            return super()._new_offset(tp)
        acked[:] = allowed
        try:
            return super()._new_offset(tp) if allowed else None
        finally:
            # Faust removed what it committed; the held-back offsets wait for the next
            # commit, after the event in hand is acked (or for the next owner).
            acked.extend(held)
            acked.sort()


class Transport(driver.Transport):
    Consumer = Consumer


class App(faust.App):
    """Faust's app with the consumer above."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
