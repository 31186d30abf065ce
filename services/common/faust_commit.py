"""Offset commits that never pass an event not yet handled.

A stage handles several events of a partition at once (agent concurrency), so they finish,
and are acked, out of order. Faust commits the first run of consecutive acked offsets,
guarded only by "the run starts at most one past the committed offset" (one too many), a
guard it skips while nothing is committed yet (a new partition, a new group): with offset
0 still being handled and 1-3 done, it commits 4, and a worker stopped or killed then
leaves event 0 to nobody. With a commit at 4 and 4 in hand, 5-6 done, it commits 7.

Here a commit covers only a run that starts exactly where the partition's committed offset
is, or, with nothing committed, at the first offset handed out since the partition was
assigned. An event given out and never acked (in hand when its worker stopped or died)
therefore holds the commit, and goes to the partition's next owner. Faust's own set of
unacked messages cannot be the guard: it holds them weakly, and an event whose handling
was cancelled drops out of it before the last commit on the way out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from weakref import WeakSet

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP


class _HandedOut(WeakSet[Any]):
    """Faust's set of messages handed to streams and not acked yet (it adds to it inline,
    streams.py), which also keeps the first offset handed out per partition."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[TP, int] = {}

    def add(self, item: Any) -> None:
        tp, offset = item.tp, item.offset
        if offset < self.first.get(tp, offset + 1):
            self.first[tp] = offset
        super().add(item)


def start_of_run(committed: int | None, first_handed_out: int | None) -> int | None:
    """Where the next commit's run of acked offsets must begin; None: nowhere yet."""
    return committed if committed is not None else first_handed_out


def covered(start: int, offset: int, gaps: Iterable[Any]) -> bool:
    """Whether ``offset`` may open a run starting at ``start``: it is ``start``, or every
    offset before it is a gap Faust saw in the log (nothing there to handle)."""
    if offset == start:
        return True
    return offset > start and any(g.begin <= start and g.end >= offset for g in gaps)


class Consumer(driver.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unacked_messages = _HandedOut()

    @property
    def _handed_out(self) -> _HandedOut:
        return self._unacked_messages  # type: ignore[return-value]

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._handed_out.first.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        start = start_of_run(self._committed_offset[tp], self._handed_out.first.get(tp))
        if start is None:
            # Acks of a partition this worker no longer has (handled after it was revoked):
            # nothing to commit for it here.
            return None
        behind = [o for o in acked if o < start]
        if behind:
            # Already covered by the committed offset (acked late, after another owner
            # committed past them): nothing to hold back for.
            acked[:] = [o for o in acked if o >= start]
            self._acked_index[tp].difference_update(behind)
            if not acked:
                return None
        if not covered(start, min(acked), self._gap[tp]):
            return None  # the event at ``start`` is still in hand
        return super()._new_offset(tp)


class Transport(driver.Transport):
    Consumer = Consumer


class App(faust.App):
    """Faust's app with the consumer above."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
