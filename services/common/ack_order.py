"""Acks in offset order, so a commit never passes an event still being handled.

A stage handles several events of a partition at once (agent concurrency), and they
finish out of order. Faust commits the first run of consecutive acked offsets and checks
only that the run starts at most one past the committed offset (one too many), a check
it skips while nothing is committed yet: with offset 0 in hand and 1-3 done it commits 4,
and a worker stopped or killed then leaves event 0 to nobody.

So a finished event is acked only once every event handed out before it on its partition
has finished too; until then it waits here. An event whose handling never finishes (its
worker stopping) holds back the acks behind it, and the commit with them: it and what
follows go to the partition's next owner, whose ledger skips what was done.

A rebalance starts a new epoch: Faust seeks the partitions back to their committed
offsets and hands their events out again, so what was still in hand or waiting is never
acked (its second delivery is), and nothing from before holds the new epoch back.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
Partition = tuple[str, int]


@dataclass(eq=False)
class Ticket(Generic[T]):
    """One event handed out: what acks it, where it sits, whether it has finished."""

    item: T
    partition: Partition
    offset: int
    epoch: int
    done: bool = False


@dataclass
class AckOrder(Generic[T]):
    epoch: int = 0
    # Per partition, the events of this epoch handed out and not acked, by offset.
    _lines: dict[Partition, list[Ticket[T]]] = field(default_factory=dict)

    def begin(self, item: T, partition: Partition, offset: int) -> Ticket[T]:
        ticket = Ticket(item, partition, offset, self.epoch)
        line = self._lines.setdefault(partition, [])
        # By offset, not arrival: two actors can take events A < B from the queue and
        # reach this point B first.
        bisect.insort(line, ticket, key=lambda t: t.offset)
        return ticket

    def finish(self, ticket: Ticket[T]) -> list[T]:
        """Mark ``ticket`` finished; what may be acked now, in offset order."""
        ticket.done = True
        if ticket.epoch != self.epoch:
            return []  # handed out before a rebalance: its redelivery is acked instead
        line = self._lines.get(ticket.partition, [])
        ready = 0
        while ready < len(line) and line[ready].done:
            ready += 1
        out = [t.item for t in line[:ready]]
        del line[:ready]
        return out

    def waiting(self, partition: Partition) -> int:
        """Events of ``partition`` handed out in this epoch and not acked yet."""
        return len(self._lines.get(partition, ()))

    def rebalanced(self) -> None:
        self.epoch += 1
        self._lines.clear()
