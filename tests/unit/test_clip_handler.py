"""ClipHandler with in-memory ports: rules, caching and single flight, no servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas.clip import ClipReady, ClipRequested
from services.clipper.handler import ClipConfig, ClipHandler
from services.common.clips import ClipPlan, ClipRejected
from services.common.episodes import Episode, SeekIndex

EPISODE = Episode(episode_id="ep", tenant_id="acme", s3_key="episodes/ep/source.mp3",
                  duration_ms=60_000, format_name="mp3", codec="mp3", size_bytes=1000)  # fmt: skip


@dataclass
class Meta:
    size: int


class FakeMedia:
    def __init__(self) -> None:
        self.objects: dict[str, int] = {EPISODE.s3_key: 1000}

    async def head(self, key: str) -> Meta | None:
        return Meta(self.objects[key]) if key in self.objects else None

    async def presign_get(self, key: str, expires_s: int) -> str:
        return f"http://s3.test/{key}?x={expires_s}"

    async def upload_file(self, key: str, path: Path, content_type: str | None = None) -> int:
        self.objects[key] = 42
        return 42


class FakeEpisodes:
    async def get(self, episode_id: str) -> Episode | None:
        return EPISODE if episode_id == "ep" else None

    async def seek_index(self, episode_id: str) -> SeekIndex | None:
        return None


class FakeClips:
    def __init__(self) -> None:
        self.docs: dict[str, int] = {}
        self.requests: list[tuple[str, bool]] = []

    async def find(self, plan: ClipPlan) -> dict[str, Any] | None:
        return {"s3_key": plan.key} if plan.key in self.docs else None

    async def insert(self, plan: ClipPlan, size_bytes: int, generation_ms: int) -> dict[str, Any]:
        self.docs.setdefault(plan.key, size_bytes)
        return {"s3_key": plan.key}

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None:
        self.requests.append((plan.key, cache_hit))


@dataclass
class FakeCut:
    path: Path
    bytes_read: int | None = 10


class SlowCutter:
    def __init__(self) -> None:
        self.cuts = 0

    @asynccontextmanager
    async def cut(self, episode: Episode, plan: ClipPlan) -> AsyncIterator[FakeCut]:
        self.cuts += 1
        await asyncio.sleep(0.05)  # long enough for the other requests to pile up
        yield FakeCut(Path("/dev/null"))


def make() -> tuple[ClipHandler, FakeMedia, FakeClips, SlowCutter]:
    media, clips, cutter = FakeMedia(), FakeClips(), SlowCutter()
    handler = ClipHandler(episodes=FakeEpisodes(), clips=clips, media=media, cutter=cutter,
                          config=ClipConfig(max_duration_ms=600_000, url_expiry_s=60))  # fmt: skip
    return handler, media, clips, cutter


def req(episode_id: str = "ep", start: int = 1000, dur: int = 2000) -> ClipRequested:
    return ClipRequested(request_id="r", tenant_id="acme", producer="t", episode_id=episode_id,
                         start_ms=start, duration_ms=dur)  # fmt: skip


async def test_concurrent_identical_requests_cut_once() -> None:
    handler, _media, clips, cutter = make()
    outs = await asyncio.gather(*(handler(req()) for _ in range(20)))
    assert cutter.cuts == 1
    keys = {o.s3_key for (o,) in outs if isinstance(o, ClipReady)}
    assert keys == {"audio_clips/ep/1000-3000.mp3"}
    assert len(clips.docs) == 1 and len(clips.requests) == 20


async def test_cache_hit_heals_missing_metadata() -> None:
    handler, media, clips, cutter = make()
    media.objects["audio_clips/ep/1000-3000.mp3"] = 7
    (out,) = await handler(req())
    assert isinstance(out, ClipReady) and out.cache_hit and out.size_bytes == 7
    assert clips.docs == {"audio_clips/ep/1000-3000.mp3": 7} and cutter.cuts == 0


async def test_end_is_clamped_to_the_episode() -> None:
    handler, *_ = make()
    (out,) = await handler(req(start=59_000, dur=5000))
    assert isinstance(out, ClipReady) and (out.start_ms, out.end_ms) == (59_000, 60_000)


@pytest.mark.parametrize(
    ("episode_id", "start", "dur", "code"),
    [
        ("nope", 0, 1000, "episode_not_found"),
        ("ep", 0, 600_001, "duration_too_long"),
        ("ep", 60_000, 1000, "start_past_end"),
    ],
)
async def test_rejections(episode_id: str, start: int, dur: int, code: str) -> None:
    handler, *_ = make()
    with pytest.raises(ClipRejected) as exc:
        await handler(req(episode_id, start, dur))
    assert exc.value.code == code


async def test_missing_source_is_reported() -> None:
    handler, media, *_ = make()
    del media.objects[EPISODE.s3_key]
    with pytest.raises(ClipRejected) as exc:
        await handler(req())
    assert exc.value.code == "source_missing"


def test_seek_window_covers_the_clip_with_preroll() -> None:
    index = SeekIndex(times_ms=[0, 1000, 2000, 3000, 4000], offsets=[100, 200, 300, 400, 500],
                      size_bytes=600)  # fmt: skip
    t0, first, last = index.window(2500, 3200, preroll_ms=500)
    assert (t0, first) == (2000, 300)
    # One sample beyond the one holding the end, for the frames a stream copy adds.
    assert last == 599
    assert index.window(1500, 1700) == (1000, 200, 399)


async def test_cache_warmer_requests_are_not_counted_as_demand() -> None:
    handler, _media, clips, _cutter = make()
    await handler(ClipRequested(request_id="w", tenant_id="acme", producer="cli",
                                episode_id="ep", start_ms=0, duration_ms=1000))  # fmt: skip
    await handler(req(start=0, dur=1000))
    assert clips.requests == [("audio_clips/ep/0-1000.mp3", True)]


async def test_accurate_cuts_are_cached_apart_from_stream_copies() -> None:
    handler, _media, _clips, cutter = make()
    (fast,) = await handler(req())
    accurate = req().model_copy(update={"accurate": True})
    (exact,) = await handler(accurate)
    assert isinstance(fast, ClipReady) and isinstance(exact, ClipReady)
    assert exact.s3_key == "audio_clips/ep/1000-3000-accurate.mp3" != fast.s3_key
    assert cutter.cuts == 2 and not exact.cache_hit
