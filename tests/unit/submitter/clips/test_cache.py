"""The cached-clip path's caches: episodes, and clip records checked with their objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from services.common.clip_rules import ClipPlan
from services.common.clips import RequestCount
from services.common.ports import ObjectInfo
from services.submitter.clips.cache import CachedEpisodes, NotInMemory, StoredClip, StoredClips
from services.submitter.clips.hit_log import HitLog
from services.submitter.clips.on_demand import (
    ClipAnswer,
    ClipPending,
    ClipQuery,
    get_cached_clip,
    get_clip,
)
from tests.support.fakes import FakeClock, MemoryClips, MemoryEpisodes, MemoryMedia
from tests.support.submitter import EPISODE, ClipWorld

TTL_S = 30.0


class CountingClips(MemoryClips):
    def __init__(self) -> None:
        super().__init__()
        self.finds = 0

    async def find(self, plan: ClipPlan) -> dict[str, object] | None:
        self.finds += 1
        return await super().find(plan)

    async def log_requests(self, counts: Sequence[RequestCount]) -> None:
        self.requests += [(c.plan.key, c.tenant_id, c.cache_hit) for c in counts]


class CountingMedia(MemoryMedia):
    def __init__(self) -> None:
        super().__init__()
        self.heads = 0

    async def head(self, key: str) -> ObjectInfo | None:
        self.heads += 1
        return await super().head(key)


class CachedWorld(ClipWorld):
    """ClipWorld with the API's caches and hit log in its ports, on a fake clock."""

    clips: CountingClips
    media: CountingMedia

    def __init__(self, wait_s: float = 0.05) -> None:
        super().__init__(wait_s=wait_s)
        self.clock = FakeClock()
        self.clips, self.media = CountingClips(), CountingMedia()
        self.stored = StoredClips(self.clips, self.media, ttl_s=TTL_S, max_entries=10,
                                  clock=self.clock)  # fmt: skip
        self.cached_episodes = CachedEpisodes(self.episodes, ttl_s=TTL_S, max_entries=10,
                                              clock=self.clock)  # fmt: skip
        self.hits = HitLog(self.clips, max_ranges=10)
        self.ports = type(self.ports)(
            episodes=self.cached_episodes,
            clips=self.clips,
            media=self.media,
            requests=self.requests,
            limits=self.ports.limits,
            stored=self.stored,
            hits=self.hits,
        )

    def reads(self) -> tuple[int, int, int]:
        return self.episodes.gets, self.clips.finds, self.media.heads


async def test_a_warm_hit_reads_nothing_and_is_counted_in_memory() -> None:
    world = CachedWorld()
    plan = world.cache(1000, 3000)
    query = ClipQuery("ep-1", 1000, 2000)
    first = await get_clip(world.ports, "acme", query)
    assert isinstance(first, ClipAnswer)
    assert world.reads() == (1, 1, 1)
    for _ in range(5):
        answer = await get_clip(world.ports, "acme", query)
        assert isinstance(answer, ClipAnswer) and answer.cache_hit
        assert (answer.s3_key, answer.size_bytes) == (plan.key, 5)
    assert world.reads() == (1, 1, 1)
    assert world.media.presigned == [plan.key] * 6  # a fresh URL for every answer
    assert world.clips.requests == [] and world.hits.pending == 6
    assert await world.hits.flush() == 6
    assert world.clips.requests == [(plan.key, "acme", True)]  # one entry, six requests


async def test_a_deleted_clip_is_served_until_the_ttl_then_cut_again() -> None:
    world = CachedWorld()
    plan = world.cache(1000, 3000)
    query = ClipQuery("ep-1", 1000, 2000)
    assert isinstance(await get_clip(world.ports, "acme", query), ClipAnswer)
    del world.clips.docs[plan.key]
    world.clock.advance(TTL_S - 0.001)
    # The stated bound: within it, the cached record still answers...
    assert world.stored.cache.refresh_after_s < TTL_S - 0.001
    answer = await get_clip(world.ports, "acme", query)
    assert isinstance(answer, ClipAnswer)
    world.clock.advance(0.001)
    # ...past it, the clip is looked up again, found gone, and requested from the clipper.
    assert isinstance(await get_clip(world.ports, "acme", query), ClipPending)
    await world.background.drain(1)


async def test_a_record_whose_object_is_gone_is_not_cached() -> None:
    world = CachedWorld()
    plan = world.cache(1000, 3000)
    del world.media.objects[plan.key]
    assert isinstance(await get_clip(world.ports, "acme", ClipQuery("ep-1", 1000, 2000)),
                      ClipPending)  # fmt: skip
    await world.background.drain(1)
    world.media.put(plan.key, b"y" * 7)  # cut again
    answer = await get_clip(world.ports, "acme", ClipQuery("ep-1", 1000, 2000))
    assert isinstance(answer, ClipAnswer) and answer.size_bytes == 7


async def test_stored_clips_key_on_the_whole_plan() -> None:
    clips, media, clock = CountingClips(), CountingMedia(), FakeClock()
    stored = StoredClips(clips, media, ttl_s=TTL_S, max_entries=10, clock=clock)
    mp3 = ClipPlan("acme", "ep-1", 0, 1000, "mp3", False, "audio_clips/acme/ep-1/0-1000.mp3")
    wav = ClipPlan("acme", "ep-1", 0, 1000, "wav", False, "audio_clips/acme/ep-1/0-1000.wav")
    other = ClipPlan("other", "ep-1", 0, 1000, "mp3", False, "audio_clips/other/ep-1/0-1000.mp3")
    clips.docs[mp3.key] = {"s3_key": mp3.key}
    media.put(mp3.key, b"abc")
    assert await stored.find(mp3) == StoredClip(mp3.key, 3)
    assert await stored.find(wav) is None
    assert await stored.find(other) is None
    assert await stored.find(mp3) == StoredClip(mp3.key, 3)
    assert clips.finds == 3


async def test_episodes_are_cached_per_tenant_and_absence_is_not() -> None:
    store, clock = MemoryEpisodes(EPISODE), FakeClock()
    episodes = CachedEpisodes(store, ttl_s=TTL_S, max_entries=10, clock=clock)
    assert await episodes.get("acme", "ep-1") == EPISODE
    assert await episodes.get("acme", "ep-1") == EPISODE
    assert await episodes.get("other", "ep-1") is None
    assert await episodes.get("other", "ep-1") is None
    assert store.gets == 3
    del store.by_id[("acme", "ep-1")]
    clock.advance(TTL_S)
    assert await episodes.get("acme", "ep-1") is None


async def test_in_memory_views_never_read_and_say_what_they_lack() -> None:
    world = CachedWorld()
    plan = world.cache(1000, 3000)
    with pytest.raises(NotInMemory):
        await world.cached_episodes.in_memory.get("acme", "ep-1")
    assert await world.stored.in_memory.find(plan) is None
    assert world.reads() == (0, 0, 0)
    await get_clip(world.ports, "acme", ClipQuery("ep-1", 1000, 2000))
    assert await world.cached_episodes.in_memory.get("acme", "ep-1") == EPISODE
    assert await world.stored.in_memory.find(plan) == StoredClip(plan.key, 5)
    assert world.reads() == (1, 1, 1)
    memory_ports = replace(world.ports, episodes=world.cached_episodes.in_memory,
                           stored=world.stored.in_memory)  # fmt: skip
    answer = await get_cached_clip(memory_ports, "acme", ClipQuery("ep-1", 1000, 2000))
    assert answer is not None and answer.cache_hit
    assert await get_cached_clip(memory_ports, "acme", ClipQuery("ep-1", 0, 2000)) is None
    assert world.reads() == (1, 1, 1)
    assert world.hits.pending == 2  # the two hits; the miss is the route's to count
