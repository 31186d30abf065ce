"""Cache hits counted in memory and written to the request log every few seconds.

The request log only steers cache warming (``most_requested``), so a hit need not wait
for its insert: :meth:`HitLog.record` is a dictionary update, and a background task
writes what piled up as one ``insert_many`` with one entry per range (``repeats`` holds
the rest), every ``every_s`` seconds and once more on the way out.

Bounded: at most ``max_ranges`` distinct ranges wait between writes; a hit for a new
range past that is dropped. Nothing is lost silently: drops, and counts a failed or
final write could not save, are logged with their number (and kept in ``dropped``). A
failed write is retried with the next one, as far as the bound allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.common.clip_rules import ClipPlan
from services.common.clips import RequestCount

log = logging.getLogger(__name__)


class RequestLog(Protocol):
    async def log_requests(self, counts: Sequence[RequestCount]) -> None: ...


@dataclass
class _Pending:
    requests: int
    first_at: datetime


_Key = tuple[ClipPlan, str, bool]


class HitLog:
    def __init__(self, store: RequestLog, *, max_ranges: int) -> None:
        if max_ranges < 1:
            raise ValueError("max_ranges must be >= 1")
        self._store = store
        self.max_ranges = max_ranges
        self._pending: dict[_Key, _Pending] = {}
        self.dropped = 0  # every count ever dropped, for the logs and tests
        self._unreported = 0
        self.written = 0

    @property
    def pending(self) -> int:
        """Requests waiting to be written."""
        return sum(p.requests for p in self._pending.values())

    def record(self, plan: ClipPlan, tenant_id: str, cache_hit: bool = True) -> None:
        key = (plan, tenant_id, cache_hit)
        entry = self._pending.get(key)
        if entry is not None:
            entry.requests += 1
        elif len(self._pending) < self.max_ranges:
            self._pending[key] = _Pending(1, datetime.now(UTC))
        else:
            self._drop(1)

    async def flush(self) -> int:
        """Write what is pending; returns the number of requests written. On failure the
        counts are kept for the next write (as far as the bound allows) and it raises."""
        pending, self._pending = self._pending, {}
        self._report()
        if not pending:
            return 0
        counts = [RequestCount(plan, tenant, hit, p.requests, p.first_at)
                  for (plan, tenant, hit), p in pending.items()]  # fmt: skip
        try:
            await self._store.log_requests(counts)
        except BaseException:
            self._put_back(pending)
            raise
        n = sum(c.requests for c in counts)
        self.written += n
        return n

    @contextlib.asynccontextmanager
    async def flushing(self, every_s: float) -> AsyncIterator[HitLog]:
        """Write every ``every_s`` seconds while open, and what is left on the way out."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.flush()
                except Exception as exc:
                    log.warning("clip hit log: write failed, retrying with the next: %r", exc)

        task = asyncio.create_task(loop(), name="clip-hit-log-flush")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await self.flush()
            except Exception as exc:
                lost, self._pending = self.pending, {}
                self.dropped += lost
                log.warning("clip hit log: final write failed, %d cache hits not counted: %r",
                            lost, exc)  # fmt: skip

    def _put_back(self, pending: dict[_Key, _Pending]) -> None:
        # Hits recorded meanwhile stay; the older counts join them while there is room.
        for key, old in pending.items():
            entry = self._pending.get(key)
            if entry is not None:
                entry.requests += old.requests
                entry.first_at = min(entry.first_at, old.first_at)
            elif len(self._pending) < self.max_ranges:
                self._pending[key] = old
            else:
                self._drop(old.requests)
        self._report()

    def _drop(self, n: int) -> None:
        self.dropped += n
        self._unreported += n

    def _report(self) -> None:
        if self._unreported:
            log.warning("clip hit log: %d cache hits not counted (%d ranges were waiting)",
                        self._unreported, self.max_ranges)  # fmt: skip
            self._unreported = 0
