"""Cache hits counted in memory, written in batches, bounded, and never lost silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from services.common.clip_rules import ClipPlan
from services.common.clips import RequestCount
from services.submitter.clips.hit_log import HitLog


def plan(start_ms: int) -> ClipPlan:
    return ClipPlan("acme", "ep-1", start_ms, start_ms + 1000, "mp3", False, f"k/{start_ms}")


class Log:
    def __init__(self) -> None:
        self.writes: list[list[RequestCount]] = []
        self.fail = 0

    async def log_requests(self, counts: Sequence[RequestCount]) -> None:
        await asyncio.sleep(0)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("mongo down")
        self.writes.append(list(counts))

    def totals(self) -> dict[tuple[int, str], int]:
        out: dict[tuple[int, str], int] = {}
        for write in self.writes:
            for c in write:
                key = (c.plan.start_ms, c.tenant_id)
                out[key] = out.get(key, 0) + c.requests
        return out


async def test_hits_are_summed_per_range_and_written_in_one_batch() -> None:
    store = Log()
    hits = HitLog(store, max_ranges=10)
    for _ in range(3):
        hits.record(plan(0), "acme")
    hits.record(plan(1000), "acme")
    hits.record(plan(0), "other")
    assert store.writes == [] and hits.pending == 5
    assert await hits.flush() == 5
    [write] = store.writes
    assert store.totals() == {(0, "acme"): 3, (1000, "acme"): 1, (0, "other"): 1}
    assert all(c.cache_hit for c in write)
    assert hits.pending == 0 and await hits.flush() == 0
    assert len(store.writes) == 1  # nothing to write, no write


async def test_past_the_bound_a_new_range_is_dropped_and_the_drop_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Log()
    hits = HitLog(store, max_ranges=2)
    hits.record(plan(0), "acme")
    hits.record(plan(1000), "acme")
    hits.record(plan(2000), "acme")  # a third range: no room
    hits.record(plan(2000), "acme")
    hits.record(plan(0), "acme")  # a waiting range still counts
    assert hits.dropped == 2
    with caplog.at_level(logging.WARNING):
        assert await hits.flush() == 3
    assert "2 cache hits not counted" in caplog.text
    assert store.totals() == {(0, "acme"): 2, (1000, "acme"): 1}


async def test_a_failed_write_keeps_the_counts_for_the_next() -> None:
    store = Log()
    hits = HitLog(store, max_ranges=10)
    hits.record(plan(0), "acme")
    hits.record(plan(0), "acme")
    store.fail = 1
    with pytest.raises(ConnectionError):
        await hits.flush()
    hits.record(plan(0), "acme")
    hits.record(plan(1000), "acme")
    assert await hits.flush() == 4
    assert store.totals() == {(0, "acme"): 3, (1000, "acme"): 1}
    assert hits.dropped == 0


async def test_put_back_counts_past_the_bound_are_dropped_with_their_number() -> None:
    store = Log()
    hits = HitLog(store, max_ranges=2)
    hits.record(plan(0), "acme")
    hits.record(plan(1000), "acme")
    store.fail = 1
    flushing = asyncio.create_task(hits.flush())
    await asyncio.sleep(0)  # the write is out; new ranges fill the buffer meanwhile
    hits.record(plan(2000), "acme")
    hits.record(plan(3000), "acme")
    with pytest.raises(ConnectionError):
        await flushing
    assert hits.dropped == 2 and hits.pending == 2
    assert await hits.flush() == 2


async def test_flushing_writes_periodically_and_on_the_way_out() -> None:
    store = Log()
    hits = HitLog(store, max_ranges=10)
    async with hits.flushing(every_s=0.01):
        hits.record(plan(0), "acme")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if store.writes:
                break
        assert store.totals() == {(0, "acme"): 1}
        hits.record(plan(1000), "acme")
        store.fail = 1
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not store.fail:
                break
        assert store.fail == 0  # a periodic write failed; its counts were kept
    assert store.totals()[(1000, "acme")] == 1  # by the next write or the last one
    assert hits.dropped == 0
    assert hits.pending == 0 and hits.written == 2


async def test_a_failed_last_write_logs_what_was_lost(caplog: pytest.LogCaptureFixture) -> None:
    store = Log()
    hits = HitLog(store, max_ranges=10)
    with caplog.at_level(logging.WARNING):
        async with hits.flushing(every_s=60):
            hits.record(plan(0), "acme")
            hits.record(plan(0), "acme")
            store.fail = 1
    assert "final write failed, 2 cache hits not counted" in caplog.text
    assert hits.dropped == 2 and hits.pending == 0
