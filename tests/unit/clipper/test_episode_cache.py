"""Episode records kept in the clipper for a while: read once, per tenant, never the
unknown ones, never for longer than their age limit."""

from __future__ import annotations

from datetime import UTC, datetime

from services.clipper.episode_cache import CachedEpisodes
from services.common.episodes import Episode, SeekIndex
from tests.support.fakes import FakeClock, MemoryEpisodes

REGISTERED = datetime(2024, 1, 1, tzinfo=UTC)


def ep(episode_id: str = "ep", tenant_id: str = "acme") -> Episode:
    return Episode(episode_id=episode_id, tenant_id=tenant_id, s3_key=f"k/{episode_id}",
                   duration_ms=1000, format_name="mp3", codec="mp3", size_bytes=10,
                   registered_at=REGISTERED)  # fmt: skip


async def test_an_episode_is_read_once_while_fresh() -> None:
    repo, clock = MemoryEpisodes(ep()), FakeClock()
    cache = CachedEpisodes(repo, max_age_s=60, clock=clock)
    assert await cache.get("acme", "ep") == ep()
    assert await cache.get("acme", "ep") == ep()
    assert repo.gets == 1
    clock.advance(61)
    assert await cache.get("acme", "ep") == ep()
    assert repo.gets == 2


async def test_tenants_do_not_share_entries_and_unknown_ones_are_asked_again() -> None:
    repo = MemoryEpisodes(ep())
    cache = CachedEpisodes(repo)
    assert await cache.get("intruder", "ep") is None
    assert await cache.get("acme", "ep") is not None
    assert await cache.get("intruder", "ep") is None
    assert repo.gets == 3
    repo.by_id[("intruder", "ep")] = ep(tenant_id="intruder")
    assert await cache.get("intruder", "ep") == ep(tenant_id="intruder")


async def test_the_cache_is_bounded() -> None:
    repo = MemoryEpisodes(*(ep(f"ep{i}") for i in range(3)))
    cache = CachedEpisodes(repo, max_entries=2)
    for i in (0, 1, 2, 0):
        await cache.get("acme", f"ep{i}")
    assert repo.gets == 4  # ep0 had been pushed out by ep2


async def test_seek_indexes_are_read_through() -> None:
    repo = MemoryEpisodes(ep())
    index = SeekIndex(times_ms=[0.0], offsets=[10], size_bytes=10)
    repo.indexes[("acme", "ep")] = index
    assert await CachedEpisodes(repo).seek_index("acme", "ep") == index
