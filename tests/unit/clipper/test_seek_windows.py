"""Byte windows from the binary seek index (a few records by range, blocks kept in a
bounded LRU) and, for episodes registered before it, from the MongoDB copy."""

from __future__ import annotations

import pytest

from services.clipper.seek_windows import BLOCK_RECORDS, SeekWindows, Window
from services.common import seek_index
from services.common.episodes import Episode, SeekIndex
from services.common.errors import PermanentError
from tests.support.fakes import MemoryEpisodes
from tests.support.ranged_media import RangedMemoryMedia

FRAME_MS = 1152 * 1000 / 44100


def grid_index(duration_s: int) -> SeekIndex:
    """The first frame at or after each second; frames of 300 to 499 bytes."""
    times: list[float] = []
    offsets: list[int] = []
    offset, k = 417, 0
    while (t := k * FRAME_MS) < duration_s * 1000:
        if t >= len(times) * 1000:
            times.append(round(t, 3))
            offsets.append(offset)
        offset += 300 + (k * 37) % 200
        k += 1
    return SeekIndex(times_ms=times, offsets=offsets, size_bytes=offset)


def episode(index: SeekIndex, *, binary: bool = True, episode_id: str = "ep") -> Episode:
    return Episode(
        episode_id=episode_id, tenant_id="acme", s3_key=f"episodes/acme/{episode_id}/s.mp3",
        duration_ms=round(index.times_ms[-1]), format_name="mp3", codec="mp3",
        sample_rate=44100, size_bytes=index.size_bytes, seek_indexed=True,
        seek_index_key=f"episodes/acme/{episode_id}/seek.idx" if binary else None,
    )  # fmt: skip


class CountingEpisodes(MemoryEpisodes):
    def __init__(self, *episodes: Episode) -> None:
        super().__init__(*episodes)
        self.index_loads = 0

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None:
        self.index_loads += 1
        return await super().seek_index(tenant_id, episode_id)


def world(
    index: SeekIndex, *, binary: bool = True, legacy: bool = False, max_blocks: int = 256
) -> tuple[SeekWindows, RangedMemoryMedia, CountingEpisodes, Episode]:
    ep = episode(index, binary=binary)
    media = RangedMemoryMedia()
    if binary and ep.seek_index_key:
        media.put(ep.seek_index_key, seek_index.encode(index))
    episodes = CountingEpisodes(ep)
    if legacy:
        episodes.indexes[("acme", "ep")] = index
    return SeekWindows(media, episodes, max_blocks=max_blocks), media, episodes, ep


async def test_a_clip_reads_one_block_of_records_whatever_the_episode_length() -> None:
    for hours in (1, 3, 10):
        index = grid_index(hours * 3600)
        windows, media, episodes, ep = world(index)
        start = hours * 3600_000 * 0.7
        got = await windows.window(ep, start, start + 30_000)
        assert got == Window(*index.window(start, start + 30_000))
        ((key, first, last),) = media.gets
        assert key == ep.seek_index_key and last is not None
        assert last - first + 1 == BLOCK_RECORDS * seek_index.RECORD.size
        assert episodes.index_loads == 0


async def test_blocks_are_cached_and_the_cache_is_bounded() -> None:
    index = grid_index(3 * 3600)
    windows, media, _, ep = world(index, max_blocks=2)
    block_s = BLOCK_RECORDS
    for start_s in (10, 20, 30):  # one block
        await windows.window(ep, start_s * 1000, start_s * 1000 + 5000)
    assert len(media.gets) == 1
    # A clip across two missing blocks fetches both with one GET.
    edge = block_s * 3 * 1000
    assert await windows.window(ep, edge - 2000, edge + 2000) == Window(
        *index.window(edge - 2000, edge + 2000)
    )
    assert len(media.gets) == 2
    # Only two blocks are kept: the first one was dropped, so it is read again.
    await windows.window(ep, 10_000, 15_000)
    assert len(media.gets) == 3


async def test_the_end_of_the_episode_reads_a_short_block() -> None:
    index = grid_index(1000)
    windows, _, _, ep = world(index)
    end = index.times_ms[-1]
    assert await windows.window(ep, end - 3000, end + 500) == Window(
        *index.window(end - 3000, end + 500)
    )
    last = await windows.window(ep, end - 3000, end + 500)
    assert last is not None and last.last == index.size_bytes - 1


async def test_episodes_without_the_binary_index_load_the_mongodb_copy_once() -> None:
    index = grid_index(3600)
    windows, media, episodes, ep = world(index, binary=False, legacy=True)
    for start in (1000, 500_000, 2_000_000):
        assert await windows.window(ep, start, start + 30_000) == Window(
            *index.window(start, start + 30_000)
        )
    assert episodes.index_loads == 1 and media.gets == []


async def test_a_lost_binary_index_falls_back_to_mongodb() -> None:
    index = grid_index(600)
    windows, media, episodes, ep = world(index, legacy=True)
    assert ep.seek_index_key is not None
    await media.delete(ep.seek_index_key)
    assert await windows.window(ep, 5000, 9000) == Window(*index.window(5000, 9000))
    assert episodes.index_loads == 1


async def test_no_index_at_all_is_no_window() -> None:
    windows, _, _, ep = world(grid_index(60), binary=False)
    assert await windows.window(ep, 1000, 2000) is None


async def test_other_storage_errors_are_not_hidden() -> None:
    index = grid_index(60)
    windows, media, _, ep = world(index)

    async def broken(key: str, start: int, end_inclusive: int) -> bytes:
        raise PermanentError("denied", code="s3_error")

    media.get_range = broken  # type: ignore[method-assign]
    with pytest.raises(PermanentError) as exc:
        await windows.window(ep, 1000, 2000)
    assert exc.value.code == "s3_error"


async def test_the_mongodb_copies_kept_are_bounded_by_entries() -> None:
    small, big = grid_index(600), grid_index(3600)
    eps = [episode(small, binary=False, episode_id=f"ep{i}") for i in range(3)]
    eps.append(episode(big, binary=False, episode_id="big"))
    episodes = CountingEpisodes(*eps)
    for e in eps:
        episodes.indexes[("acme", e.episode_id)] = big if e.episode_id == "big" else small
    windows = SeekWindows(RangedMemoryMedia(), episodes, max_legacy_entries=2000)
    for e in eps:
        await windows.window(e, 1000, 2000)
    assert episodes.index_loads == 4
    # The big one (3600 entries) pushed the small ones out; it stays, being the latest.
    await windows.window(eps[-1], 5000, 6000)
    assert episodes.index_loads == 4
    await windows.window(eps[0], 5000, 6000)
    assert episodes.index_loads == 5


async def test_a_directory_window_needs_no_read_and_decoded_directories_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[int] = []
    decode = seek_index.decode_directory

    def counting(data: bytes) -> tuple[list[float], list[int]]:
        decoded.append(len(data))
        return decode(data)

    monkeypatch.setattr(seek_index, "decode_directory", counting)
    indexes = [grid_index(s) for s in (600, 1200, 1800)]
    eps = [
        episode(ix, episode_id=f"ep{i}").model_copy(
            update={"seek_directory": seek_index.encode_directory(ix)}
        )
        for i, ix in enumerate(indexes)
    ]
    media = RangedMemoryMedia()
    windows = SeekWindows(media, CountingEpisodes(*eps), max_directories=2)
    for ep, ix in [(eps[0], indexes[0]), (eps[0], indexes[0]), (eps[1], indexes[1])]:
        got = windows.from_directory(ep, 300_000, 330_000)
        times, offsets = seek_index.decode(seek_index.encode(ix)).times_ms, ix.offsets
        assert got is not None and got.first in offsets and got.start_ms in times
        assert got.start_ms <= 299_500 and got.first <= ix.window(300_000, 330_000)[1]
    assert media.gets == [] and len(decoded) == 2  # the first episode's decoded once
    windows.from_directory(eps[2], 0, 1000)  # a third: the least recently used goes
    windows.from_directory(eps[1], 0, 1000)
    windows.from_directory(eps[0], 0, 1000)
    assert len(decoded) == 4
    # No directory, or one this clipper cannot read: no window from it.
    assert windows.from_directory(episode(indexes[0]), 0, 1000) is None
    odd = eps[0].model_copy(update={"seek_directory": b"\x07" + bytes(12)})
    assert windows.from_directory(odd, 0, 1000) is None
