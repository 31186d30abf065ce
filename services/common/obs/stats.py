"""Usage counts for the operators' console, kept in MongoDB for the last few days.

Prometheus answers "how much, lately" for dashboards, but a console must show the last
hour even when no Prometheus is scraping, and across every process of a stage. So the
places that count for the console (provider calls, cache look-ups, clip requests) also
call :func:`count`; each process sums its counts per minute and appends them to
``ops_stats`` every few seconds. Appending (never ``$inc`` on a shared document) keeps
every count on servers that do not serialize concurrent updates of one document.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter as Tally
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Final

from pymongo.asynchronous.database import AsyncDatabase

from services.common import retention
from services.common.mongo import Doc

log = logging.getLogger(__name__)

STATS: Final = "ops_stats"
RETENTION: Final = timedelta(days=3)
FLUSH_EVERY_S: Final = 5.0
# What one process may hold between flushes; past it, counts are dropped (and logged),
# never the service's memory.
MAX_PENDING: Final = 50_000


class StatName(enum.StrEnum):
    PROVIDER_CALL = "provider_call"  # provider, status
    CACHE = "cache"  # cache, result
    CLIP_REQUEST = "clip_request"  # tenant, episode_id, start_ms, duration_ms


_Key = tuple[datetime, str, tuple[tuple[str, str], ...]]


class _Sink:
    def __init__(self) -> None:
        self.pending: Tally[_Key] = Tally()
        self.attached = 0
        self.dropped = 0

    def add(self, name: str, n: int, labels: dict[str, str]) -> None:
        if not self.attached:
            return
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        key = (minute, name, tuple(sorted(labels.items())))
        if key not in self.pending and len(self.pending) >= MAX_PENDING:
            self.dropped += n
            return
        self.pending[key] += n

    def take(self) -> Tally[_Key]:
        pending, self.pending = self.pending, Tally()
        return pending

    def put_back(self, pending: Tally[_Key]) -> None:
        self.pending.update(pending)


_SINK: Final = _Sink()


def count(name: StatName, n: int = 1, **labels: str) -> None:
    """Count ``n`` for the console; never blocks, and does nothing in a process that has
    not opened :func:`recording`."""
    _SINK.add(name.value, n, {k: str(v) for k, v in labels.items()})


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[STATS].create_index([("name", 1), ("at", 1)])


async def prune(db: AsyncDatabase[Doc]) -> None:
    await retention.prune(db[STATS], "at", RETENTION)


async def flush(db: AsyncDatabase[Doc]) -> int:
    pending = _SINK.take()
    docs = [{"at": at, "name": name, "labels": dict(labels), "n": n}
            for (at, name, labels), n in pending.items()]  # fmt: skip
    if docs:
        try:
            await db[STATS].insert_many(docs, ordered=False)
        except Exception:
            # Appended whole or not at all would need a transaction; a partial insert
            # counted twice on the next try is the lesser harm than losing the minute.
            _SINK.put_back(pending)
            raise
    if _SINK.dropped:
        log.warning("ops stats: %d counts dropped (buffer full)", _SINK.dropped)
        _SINK.dropped = 0
    return len(docs)


@asynccontextmanager
async def recording(db: AsyncDatabase[Doc], every_s: float = FLUSH_EVERY_S) -> AsyncIterator[None]:
    """Collect this process's counts and append them to ``db`` every ``every_s`` seconds
    (and once more on the way out)."""
    await ensure_indexes(db)

    async def loop() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await flush(db)
            except Exception as exc:
                # A MongoDB outage delays the console's counts (they wait for the next
                # try), never the service.
                log.warning("ops stats: flush failed: %r", exc)

    # Old counts go by the server's TTL index, or by a prune where it has none.
    async with retention.kept_for(db[STATS], "at", RETENTION):
        _SINK.attached += 1
        task = asyncio.create_task(loop(), name="ops-stats-flush")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            _SINK.attached -= 1
            with suppress(Exception):
                await flush(db)


async def window_counts(
    db: AsyncDatabase[Doc], name: StatName, since: datetime
) -> list[tuple[dict[str, str], int]]:
    """Counts of ``name`` since ``since``, summed per distinct label set, largest first."""
    totals: Tally[tuple[tuple[str, str], ...]] = Tally()
    cursor = db[STATS].find({"name": name.value, "at": {"$gte": since}}, {"labels": 1, "n": 1})
    async for doc in cursor:
        totals[tuple(sorted((doc.get("labels") or {}).items()))] += int(doc.get("n", 0))
    return [(dict(labels), n) for labels, n in totals.most_common()]
