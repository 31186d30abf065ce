"""The per-process TTL cache: expiry, bound, one load per key, refresh ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from services.submitter.ttl_cache import TTLCache
from tests.support.fakes import FakeClock


class Source:
    """A store whose values tests change, counting reads; ``gate`` holds every read."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    def loader(self, key: str) -> Callable[[], Awaitable[str | None]]:
        async def load() -> str | None:
            self.reads += 1
            if self.gate is not None:
                await self.gate.wait()
            if self.fail:
                raise ConnectionError("store down")
            return self.values.get(key)

        return load


def cache(clock: FakeClock, ttl_s: float = 10, max_entries: int = 100) -> TTLCache[str, str]:
    # Refresh ahead off unless a test asks for it: these test the hard expiry.
    return TTLCache("t", ttl_s=ttl_s, max_entries=max_entries, refresh_after_s=ttl_s, clock=clock)


async def test_a_value_is_served_until_its_ttl_then_read_again() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    src.values["a"] = "v1"
    assert await c.get("a", src.loader("a")) == "v1"
    src.values["a"] = "v2"
    clock.advance(9.99)
    assert await c.get("a", src.loader("a")) == "v1"
    assert src.reads == 1
    clock.advance(0.01)
    assert await c.get("a", src.loader("a")) == "v2"
    assert src.reads == 2


async def test_the_ttl_runs_from_when_the_read_started() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    src.values["a"] = "v1"
    src.gate = asyncio.Event()
    getting = asyncio.create_task(c.get("a", src.loader("a")))
    await asyncio.sleep(0)
    clock.advance(4)  # the read takes 4 s
    src.gate.set()
    assert await getting == "v1"
    src.gate = None
    clock.advance(6)  # 10 s after the read began
    src.values["a"] = "v2"
    assert await c.get("a", src.loader("a")) == "v2"


async def test_absence_is_not_cached() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    assert await c.get("a", src.loader("a")) is None
    src.values["a"] = "new"
    assert await c.get("a", src.loader("a")) == "new"
    assert src.reads == 2 and len(c) == 1


async def test_at_most_max_entries_the_least_recently_used_going_first() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock, max_entries=2)
    src.values.update(a="A", b="B", c="C")
    await c.get("a", src.loader("a"))
    await c.get("b", src.loader("b"))
    await c.get("a", src.loader("a"))  # a is now the most recent
    await c.get("c", src.loader("c"))
    assert len(c) == 2 and src.reads == 3
    await c.get("a", src.loader("a"))
    assert src.reads == 3  # a stayed
    await c.get("b", src.loader("b"))
    assert src.reads == 4  # b was evicted


async def test_concurrent_misses_share_one_read() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    src.values["a"] = "A"
    src.gate = asyncio.Event()
    gets = [asyncio.create_task(c.get("a", src.loader("a"))) for _ in range(16)]
    await asyncio.sleep(0)
    src.gate.set()
    assert await asyncio.gather(*gets) == ["A"] * 16
    assert src.reads == 1


async def test_a_failed_read_reaches_every_waiter_and_is_not_cached() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    src.values["a"] = "A"
    src.fail = True
    with pytest.raises(ConnectionError):
        await c.get("a", src.loader("a"))
    src.fail = False
    assert await c.get("a", src.loader("a")) == "A"


async def test_a_cancelled_caller_does_not_cancel_the_shared_read() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    src.values["a"] = "A"
    src.gate = asyncio.Event()
    first = asyncio.create_task(c.get("a", src.loader("a")))
    second = asyncio.create_task(c.get("a", src.loader("a")))
    await asyncio.sleep(0)
    first.cancel()
    src.gate.set()
    assert await second == "A"
    assert src.reads == 1


async def test_a_value_past_refresh_after_is_served_and_replaced_in_the_background() -> None:
    clock, src = FakeClock(), Source()
    c: TTLCache[str, str] = TTLCache("t", ttl_s=10, max_entries=10, clock=clock)
    assert c.refresh_after_s == 5
    src.values["a"] = "v1"
    await c.get("a", src.loader("a"))
    src.values["a"] = "v2"
    clock.advance(6)
    src.gate = asyncio.Event()
    # Served at once, without waiting for the read under way.
    assert await c.get("a", src.loader("a")) == "v1"
    assert await c.get("a", src.loader("a")) == "v1"
    src.gate.set()
    await asyncio.sleep(0.01)
    assert src.reads == 2  # one refresh for both
    clock.advance(9)  # 15 s after the first read, 9 after the refresh began
    assert await c.get("a", src.loader("a")) == "v2"
    assert src.reads == 2


async def test_a_refresh_that_finds_nothing_drops_the_value() -> None:
    clock, src = FakeClock(), Source()
    c: TTLCache[str, str] = TTLCache("t", ttl_s=10, max_entries=10, clock=clock)
    src.values["a"] = "v1"
    await c.get("a", src.loader("a"))
    del src.values["a"]
    clock.advance(6)
    assert await c.get("a", src.loader("a")) == "v1"
    await asyncio.sleep(0.01)
    assert await c.get("a", src.loader("a")) is None


async def test_a_failed_refresh_keeps_the_value_until_its_hard_expiry() -> None:
    clock, src = FakeClock(), Source()
    c: TTLCache[str, str] = TTLCache("t", ttl_s=10, max_entries=10, clock=clock)
    src.values["a"] = "v1"
    await c.get("a", src.loader("a"))
    src.fail = True
    clock.advance(6)
    assert await c.get("a", src.loader("a")) == "v1"
    await asyncio.sleep(0.01)
    assert await c.get("a", src.loader("a")) == "v1"  # kept, refresh tried again
    await asyncio.sleep(0.01)
    clock.advance(4)
    with pytest.raises(ConnectionError):
        await c.get("a", src.loader("a"))
    await c.aclose()


async def test_invalidate_forgets_the_value_and_a_read_under_way() -> None:
    clock, src = FakeClock(), Source()
    c = cache(clock)
    src.values["a"] = "live"
    await c.get("a", src.loader("a"))
    c.invalidate("a")
    src.values["a"] = "revoked"
    src.gate = asyncio.Event()
    racing = asyncio.create_task(c.get("a", src.loader("a")))
    await asyncio.sleep(0)
    c.invalidate("a")  # e.g. a revocation written while that read was out
    src.gate.set()
    assert await racing == "revoked"
    assert len(c) == 0  # the racing read's result was not kept
    src.gate = None
    assert await c.get("a", src.loader("a")) == "revoked"


async def test_ttl_zero_reads_every_time() -> None:
    clock, src = FakeClock(), Source()
    c: TTLCache[str, str] = TTLCache("t", ttl_s=0, max_entries=10, clock=clock)
    src.values["a"] = "A"
    for _ in range(3):
        assert await c.get("a", src.loader("a")) == "A"
    assert src.reads == 3 and len(c) == 0


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        TTLCache("t", ttl_s=1, max_entries=0)


async def test_peek_answers_from_memory_only_and_refreshes_ahead() -> None:
    clock, src = FakeClock(), Source()
    c: TTLCache[str, str] = TTLCache("t", ttl_s=10, max_entries=10, clock=clock)
    src.values["a"] = "v1"
    assert c.peek("a", src.loader("a")) is None
    assert src.reads == 0  # not held: nothing read
    await c.get("a", src.loader("a"))
    src.values["a"] = "v2"
    assert c.peek("a", src.loader("a")) == "v1"
    clock.advance(6)
    assert c.peek("a", src.loader("a")) == "v1"  # aging: served, refreshed behind
    await asyncio.sleep(0.01)
    assert src.reads == 2 and c.peek("a", src.loader("a")) == "v2"
    clock.advance(10)
    assert c.peek("a", src.loader("a")) is None  # past its TTL
    assert src.reads == 2
