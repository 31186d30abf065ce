"""ClipHandler with the shared in-memory ports: rules, tenancy, caching, single flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import ErrorInfo
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.codes import Code
from schemas.names import Producer, Stage
from services.clipper.handler import ClipConfig, ClipHandler, clip_failed
from services.common.clip_rules import ClipPlan, ClipRejected
from services.common.episodes import Episode
from services.common.errors import PermanentError
from tests.support.events import clip_ready, clip_request
from tests.support.fakes import (
    FakeClock,
    MemoryClips,
    MemoryEpisodes,
    MemoryMedia,
    context_for,
)

EPISODE = Episode(episode_id="ep", tenant_id="acme", s3_key="episodes/ep/source.mp3",
                  duration_ms=60_000, format_name="mp3", codec="mp3", size_bytes=1000)  # fmt: skip
KEY = "audio_clips/acme/ep/1000-3000.mp3"


@dataclass
class FakeCut:
    path: Path
    bytes_read: int | None = 10


class SlowCutter:
    """The clipper's own port: writes a small clip after a pause long enough for
    identical requests to pile up (and ``CUT_S`` on the handler's clock); fails its first
    ``failures`` cuts, and any cut of a source ``media`` lacks, as a real cut does.
    ``asked`` lists the (episode, clip key) of every cut; ``read_ahead`` the clip keys
    it was asked to read ahead for."""

    CUT_S = 1.5

    def __init__(self, tmp: Path, clock: FakeClock, media: MemoryMedia, failures: int = 0) -> None:
        self.cuts = 0
        self.asked: list[tuple[str, str]] = []
        self.read_ahead: list[str] = []
        self._tmp = tmp
        self._clock = clock
        self._media = media
        self._failures = failures

    async def prefetch(self, episode: Episode, plan: ClipPlan) -> None:
        self.read_ahead.append(plan.key)

    @asynccontextmanager
    async def cut(self, episode: Episode, plan: ClipPlan) -> AsyncIterator[FakeCut]:
        self.cuts += 1
        self.asked.append((episode.episode_id, plan.key))
        await asyncio.sleep(0.05)
        self._clock.advance(self.CUT_S)
        if self.cuts <= self._failures:
            raise PermanentError("decoder choked", code=Code.FFMPEG_FAILED)
        if episode.s3_key not in self._media.objects:
            raise PermanentError(f"get {episode.s3_key}: not found", code="not_found")
        path = self._tmp / f"cut-{self.cuts}.mp3"
        await asyncio.to_thread(path.write_bytes, b"x" * 42)
        yield FakeCut(path)


class Media(MemoryMedia):
    """MemoryMedia that also keeps the content type of each upload."""

    def __init__(self, objects: Mapping[str, bytes]) -> None:
        super().__init__(objects)
        self.content_types: dict[str, str | None] = {}

    async def upload_file(self, key: str, path: Path, content_type: str | None = None) -> int:
        self.content_types[key] = content_type
        return await super().upload_file(key, path, content_type)


class Clips(MemoryClips):
    """MemoryClips that also keeps what each insert was told: (key, size, generation ms)."""

    def __init__(self) -> None:
        super().__init__()
        self.inserted: list[tuple[str, int, int]] = []

    async def insert(
        self, plan: ClipPlan, size_bytes: int, generation_ms: int
    ) -> dict[str, object]:
        self.inserted.append((plan.key, size_bytes, generation_ms))
        return await super().insert(plan, size_bytes, generation_ms)


@dataclass
class World:
    handler: ClipHandler
    media: Media
    clips: Clips
    cutter: SlowCutter


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make(tmp_path)


def make(tmp_path: Path, failures: int = 0) -> World:
    media, clock = Media({EPISODE.s3_key: b"\0" * 1000}), FakeClock()
    clips, cutter = Clips(), SlowCutter(tmp_path, clock, media, failures)
    handler = ClipHandler(episodes=MemoryEpisodes(EPISODE), clips=clips, media=media,
                          cutter=cutter, config=ClipConfig(600_000, 60), clock=clock)  # fmt: skip
    return World(handler, media, clips, cutter)


def req(episode_id: str = "ep", start: int = 1000, dur: int = 2000, **kw: object) -> ClipRequested:
    return clip_request(request_id="r", episode_id=episode_id, start_ms=start, duration_ms=dur,
                        **kw)  # fmt: skip


async def call(world: World, event: ClipRequested) -> ClipReady:
    (out,) = await world.handler(event, context_for(event, Stage.CLIP))
    assert isinstance(out, ClipReady)
    await world.handler.settle()
    return out


async def test_concurrent_identical_requests_cut_and_upload_once(world: World) -> None:
    outs = await asyncio.gather(*(call(world, req()) for _ in range(20)))
    assert world.cutter.cuts == 1 and world.media.uploads == [KEY] and world.clips.inserts == 1
    assert {o.s3_key for o in outs} == {KEY}
    assert sum(not o.cache_hit for o in outs) == 20  # all waited on the one cut
    assert len(world.clips.requests) == 20


async def test_a_failed_cut_fails_every_request_waiting_on_it(tmp_path: Path) -> None:
    world = make(tmp_path, failures=1)
    results = await asyncio.gather(*(call(world, req()) for _ in range(5)), return_exceptions=True)
    assert world.cutter.cuts == 1
    assert all(isinstance(r, PermanentError) and r.code == Code.FFMPEG_FAILED for r in results)
    assert world.media.uploads == [] and world.clips.docs == {}
    # Nothing cached the failure: the next request cuts again.
    assert (await call(world, req())).s3_key == KEY and world.cutter.cuts == 2


async def test_a_request_is_logged_only_once_its_clip_is_cut(tmp_path: Path) -> None:
    world = make(tmp_path, failures=1)
    with pytest.raises(PermanentError):
        await call(world, req())
    assert world.clips.requests == []
    await call(world, req())
    assert world.clips.requests == [(KEY, "acme", False)]


async def test_the_cut_reads_ahead_while_the_cache_is_checked(world: World) -> None:
    await call(world, req())
    await call(world, req())
    # Asked both times: the second was a hit, where only that read was wasted.
    assert world.cutter.read_ahead == [KEY, KEY] and world.cutter.cuts == 1


async def test_cache_hit_heals_missing_metadata(world: World) -> None:
    world.media.put(KEY, b"y" * 7)
    out = await call(world, req())
    assert out.cache_hit and out.size_bytes == 7
    assert world.clips.docs[KEY]["file_size_bytes"] == 7 and world.cutter.cuts == 0


async def test_end_is_clamped_to_the_episode(world: World) -> None:
    out = await call(world, req(start=59_000, dur=5000))
    assert (out.start_ms, out.end_ms) == (59_000, 60_000)


@pytest.mark.parametrize(
    ("episode_id", "start", "dur", "code"),
    [
        ("nope", 0, 1000, Code.EPISODE_NOT_FOUND),
        ("ep", 0, 600_001, Code.DURATION_TOO_LONG),
        ("ep", 60_000, 1000, Code.START_PAST_END),
    ],
)
async def test_rejections(world: World, episode_id: str, start: int, dur: int, code: str) -> None:
    with pytest.raises(ClipRejected) as exc:
        await call(world, req(episode_id, start, dur))
    assert exc.value.code == code
    assert world.cutter.cuts == 0


async def test_another_tenants_episode_is_not_found(world: World) -> None:
    with pytest.raises(ClipRejected) as exc:
        await call(world, req(tenant_id="intruder"))
    assert exc.value.code == Code.EPISODE_NOT_FOUND
    assert str(exc.value) == str(ClipRejected(Code.EPISODE_NOT_FOUND, "unknown episode 'ep'"))
    assert world.cutter.cuts == 0 and world.media.presigned == []


async def test_missing_source_is_reported(world: World) -> None:
    await world.media.delete(EPISODE.s3_key)
    with pytest.raises(ClipRejected) as exc:
        await call(world, req())
    assert exc.value.code == Code.SOURCE_MISSING


async def test_cache_warmer_requests_are_not_counted_as_demand(world: World) -> None:
    await call(world, req(start=0, dur=1000, producer=Producer.CLI))
    await call(world, req(start=0, dur=1000))
    assert world.clips.requests == [("audio_clips/acme/ep/0-1000.mp3", "acme", True)]


async def test_accurate_cuts_are_cached_apart_from_stream_copies(world: World) -> None:
    fast = await call(world, req())
    exact = await call(world, req(accurate=True))
    assert exact.s3_key == "audio_clips/acme/ep/1000-3000-accurate.mp3" != fast.s3_key
    assert world.cutter.cuts == 2 and not exact.cache_hit


async def test_a_cut_clip_is_uploaded_recorded_and_answered(world: World) -> None:
    event = req(correlation_id="corr-42")
    out = await call(world, event)
    assert world.cutter.asked == [("ep", KEY)]
    assert world.media.content_types == {KEY: "audio/mpeg"}
    # The clip's record says how big it is and how long the cut took.
    assert world.clips.inserted == [(KEY, 42, 1500)]
    assert (out.request_id, out.tenant_id, out.correlation_id) == ("r", "acme", "corr-42")
    assert (out.producer, out.episode_id, out.s3_key) == (Producer.CLIPPER, "ep", KEY)
    assert (out.start_ms, out.end_ms, out.format) == (1000, 3000, "mp3")
    assert (out.cache_hit, out.size_bytes, out.generation_time_ms) == (False, 42, 1500)
    # A link to the clip's own object, valid for the configured minute, and saying until when.
    assert world.media.presigned == [KEY]
    assert out.clip_url == f"https://s3.test/{KEY}?expires=60"
    expected_expiry = datetime.now(UTC) + timedelta(seconds=60)
    assert abs(out.expires_at - expected_expiry) < timedelta(seconds=5)


async def test_a_cached_clip_is_answered_without_cutting_or_recording_again(
    world: World,
) -> None:
    world.media.put(KEY, b"y" * 7)
    await world.clips.insert(ClipPlan("acme", "ep", 1000, 3000, "mp3", False, KEY), 7, 900)
    out = await call(world, req())
    assert (out.cache_hit, out.size_bytes, out.generation_time_ms) == (True, 7, 0)
    assert world.cutter.cuts == 0 and world.clips.inserted == [(KEY, 7, 900)]
    assert out.clip_url == f"https://s3.test/{KEY}?expires=60"


async def test_healed_metadata_does_not_claim_a_generation_time(world: World) -> None:
    world.media.put(KEY, b"y" * 7)
    await call(world, req())
    assert world.clips.inserted == [(KEY, 7, 0)]


async def test_the_missing_source_is_named(world: World) -> None:
    await world.media.delete(EPISODE.s3_key)
    with pytest.raises(ClipRejected) as exc:
        await call(world, req())
    assert str(exc.value) == "the source audio of 'ep' is missing"


async def test_an_event_that_is_not_a_clip_request_is_a_bug(world: World) -> None:
    ready = clip_ready("r")
    with pytest.raises(TypeError) as exc:
        await world.handler(ready, context_for(ready, Stage.CLIP))
    assert str(exc.value) == "clipper cannot handle clip.ready"


def test_a_failure_answers_the_request_it_failed() -> None:
    event = req(episode_id="ep-9", correlation_id="corr-9")
    error = ErrorInfo(code=Code.EPISODE_NOT_FOUND, message="unknown episode 'ep-9'",
                      retryable=False, attempts=1)  # fmt: skip
    failed = clip_failed(event, error)
    assert isinstance(failed, ClipFailed)
    assert (failed.request_id, failed.tenant_id, failed.correlation_id) == ("r", "acme", "corr-9")
    assert (failed.producer, failed.episode_id, failed.error) == (
        Producer.CLIPPER, "ep-9", error
    )  # fmt: skip


class GatedClips(Clips):
    """Clips whose writes wait for ``gate``; ``fail`` makes the record's write raise."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def insert(
        self, plan: ClipPlan, size_bytes: int, generation_ms: int
    ) -> dict[str, object]:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return await super().insert(plan, size_bytes, generation_ms)

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None:
        await self.gate.wait()
        await super().log_request(plan, tenant_id, cache_hit)


def gated(tmp_path: Path) -> tuple[World, GatedClips]:
    world = make(tmp_path)
    clips = GatedClips()
    world.handler = ClipHandler(
        episodes=MemoryEpisodes(EPISODE), clips=clips, media=world.media, cutter=world.cutter,
        config=ClipConfig(600_000, 60), clock=world.cutter._clock,
    )  # fmt: skip
    world.clips = clips
    return world, clips


async def answer(world: World, event: ClipRequested) -> ClipReady:
    """The handler's answer, without waiting for what it writes after it."""
    (out,) = await world.handler(event, context_for(event, Stage.CLIP))
    assert isinstance(out, ClipReady)
    return out


async def test_the_answer_goes_out_before_the_record_and_the_log_are_written(
    tmp_path: Path,
) -> None:
    world, clips = gated(tmp_path)
    out = await answer(world, req())
    # The clip is in storage when it is answered for; its record and log come after.
    assert out.s3_key == KEY and world.media.uploads == [KEY] and not out.cache_hit
    assert clips.inserted == [] and clips.requests == []
    clips.gate.set()
    await world.handler.settle()
    assert clips.inserted == [(KEY, 42, 1500)] and clips.requests == [(KEY, "acme", False)]
    # A hit answered by the clipper checks (and heals) the record after its answer too.
    del clips.docs[KEY]
    clips.gate.clear()
    assert (await answer(world, req())).cache_hit and KEY not in clips.docs
    clips.gate.set()
    await world.handler.settle()
    assert clips.docs[KEY]["file_size_bytes"] == 42 and len(clips.requests) == 2


async def test_a_record_not_written_costs_no_answer_and_the_next_request_writes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world, clips = gated(tmp_path)
    clips.gate.set()
    clips.fail = ConnectionError("mongodb://admin:hunter2@db.internal:27017 went away")
    out = await answer(world, req())
    await world.handler.settle()
    assert not out.cache_hit and KEY not in clips.docs
    (warning,) = [r for r in caplog.records if r.name == "services.clipper.handler"]
    assert "ConnectionError" in warning.getMessage()
    assert "hunter2" not in caplog.text and "db.internal" not in caplog.text
    # The object is there without its record: the next request finds it and records it.
    clips.fail = None
    again = await call(world, req())
    assert again.cache_hit and clips.docs[KEY]["file_size_bytes"] == 42
    assert world.cutter.cuts == 1


async def test_past_the_bound_a_request_waits_for_its_own_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.clipper.handler.MAX_AFTER_REPLY", 1)
    world, clips = gated(tmp_path)
    await answer(world, req())  # its writes held at the gate: the bound is reached
    second = asyncio.create_task(answer(world, req(start=5000)))
    done, _ = await asyncio.wait({second}, timeout=0.3)
    assert not done and world.media.uploads == [KEY, "audio_clips/acme/ep/5000-7000.mp3"]
    clips.gate.set()
    out = await second
    # It returned once its own record was in.
    assert out.s3_key in clips.docs
    await world.handler.settle()
    assert len(clips.requests) == 2
