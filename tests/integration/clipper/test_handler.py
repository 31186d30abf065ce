"""The clip handler with its real adapters (MongoDB, S3, ffmpeg) on episodes made with
ffmpeg: the right part of the source, to the sample where it is stream-copied."""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.clip import ClipReady, ClipRequested
from schemas.codes import Kind, kind_of
from schemas.names import Stage
from services.clipper.cutter import FFmpegCutter, SourceUnreadable
from services.clipper.handler import ClipConfig, ClipHandler
from services.common import seek_index
from services.common.clip_rules import ClipPlan, ClipRejected
from services.common.clips import ClipStore
from services.common.episodes import Episode, EpisodeStore
from services.common.errors import PermanentError
from services.common.ffmpeg import FFmpeg
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.registration import register_file
from services.common.settings import Settings
from tests.support import audio
from tests.support.fakes import context_for

MP3_FRAME_MS = 1152 / 44.1
EXT = {"cbr": "mp3", "vbr": "mp3", "m4a": "m4a", "wav": "wav"}


class CountingCutter(FFmpegCutter):
    cuts = 0

    @asynccontextmanager
    async def cut(self, episode: Episode, plan: ClipPlan) -> AsyncIterator[Any]:
        type(self).cuts += 1
        self.last_bytes_read = None
        async with super().cut(episode, plan) as result:
            self.last_bytes_read = result.bytes_read
            yield result


@dataclass
class Env:
    settings: Settings
    handler: ClipHandler
    episodes: EpisodeStore
    clips: ClipStore
    media: MediaStore
    ffmpeg: FFmpeg
    cutter: CountingCutter
    tmp: Path

    async def register(
        self, kind: str, duration_s: int = 60, episode_id: str | None = None
    ) -> Episode:
        path = audio.make_episode(self.tmp / f"{kind}.{EXT[kind]}", kind, duration_s)
        return await register_file(
            path,
            episode_id=episode_id or f"ep-{kind}",
            tenant_id="acme",
            filename=path.name,
            store=self.episodes,
            media=self.media,
            ffmpeg=self.ffmpeg,
        )

    async def clip(self, episode_id: str, start_ms: int, duration_ms: int, **kw: Any) -> ClipReady:
        req = ClipRequested(
            request_id="r1",
            tenant_id="acme",
            producer="tests",
            episode_id=episode_id,
            start_ms=start_ms,
            duration_ms=duration_ms,
            **kw,
        )
        (out,) = await self.handler(req, context_for(req, Stage.CLIP))
        assert isinstance(out, ClipReady)
        await self.handler.settle()
        return out


@pytest.fixture
async def env(settings: Settings, tmp_path: Path) -> AsyncIterator[Env]:
    mongo = connect(settings)
    db = database(mongo, settings)
    episodes, clips = EpisodeStore(db), ClipStore(db)
    await episodes.ensure_indexes()
    await clips.ensure_collections()
    ffmpeg = FFmpeg.from_settings(settings)
    CountingCutter.cuts = 0
    async with MediaStore.from_settings(settings) as media:
        cutter = CountingCutter(media, ffmpeg, episodes)
        handler = ClipHandler(
            episodes=episodes,
            clips=clips,
            media=media,
            cutter=cutter,
            config=ClipConfig(settings.clip_max_duration_ms, 3600),
        )
        yield Env(settings, handler, episodes, clips, media, ffmpeg, cutter, tmp_path)
    await mongo.close()


async def fetch(url: str, path: Path) -> Path:
    async with httpx.AsyncClient() as client:
        resp = await client.get(url)
    assert resp.status_code == 200, resp.text
    await asyncio.to_thread(path.write_bytes, resp.content)
    return path


@pytest.mark.parametrize(
    ("kind", "fmt", "accurate", "copy"),
    [
        ("cbr", "mp3", False, True),
        ("vbr", "mp3", False, True),
        ("cbr", "mp3", True, False),
        ("vbr", "mp3", True, False),
        ("m4a", "m4a", False, True),
        ("m4a", "mp3", False, False),
        ("wav", "mp3", False, False),
        ("vbr", "wav", True, False),
        ("wav", "m4a", True, False),
    ],
)
async def test_clip_is_the_right_part_and_length(
    env: Env, kind: str, fmt: str, accurate: bool, copy: bool
) -> None:
    ep = await env.register(kind)
    # Each clip straddles a frequency change: 8 s .. 12 s the one at 10 s; 33.517 s ..
    # 36.517 s the one at 35 s, off any frame grid.
    for start, dur, change in ((8000, 4000, 10_000), (33_517, 3000, 35_000)):
        change_at = change - start
        before, after = audio.freq_at((change - 1) / 1000), audio.freq_at((change + 1) / 1000)
        ready = await env.clip(ep.episode_id, start, dur, format=fmt, accurate=accurate)
        assert (
            ready.s3_key.endswith(f"/{start}-{start + dur}{'-accurate' if accurate else ''}.{fmt}")
            and not ready.cache_hit
        )
        path = await fetch(ready.clip_url, env.tmp / f"clip.{fmt}")
        samples = audio.decode(path)
        tol = MP3_FRAME_MS if copy else 5.0
        heard = audio.heard_duration_ms(path, samples)
        assert abs(heard - dur) <= tol, heard
        found = audio.change_point_ms(
            samples, before, after, max(0, change_at - 300), change_at + 300
        )
        assert abs(found - change_at) <= tol + 1, (found, change_at)


async def test_mp3_clips_read_only_their_byte_window(env: Env) -> None:
    ep = await env.register("vbr", duration_s=120)
    assert ep.seek_directory is not None
    await env.clip(ep.episode_id, 60_000, 5000)
    # From the episode's directory: no index read, the entries around the clip.
    times, offsets = seek_index.decode_directory(ep.seek_directory)
    shift_ms = ep.start_skip_samples * 1000 / 44100
    _, first, last = seek_index.directory_window(
        times, offsets, ep.size_bytes, 60_000 + shift_ms, 65_000 + shift_ms
    )
    assert env.cutter.last_bytes_read == last - first + 1
    assert env.cutter.directory_windows == 1 and env.cutter.windows.blocks.gets == 0
    # 5 s plus pre-roll and up to a 10 s step either side, of ~120 s: at most a fifth.
    assert last - first + 1 < ep.size_bytes * 0.2, (first, last, ep.size_bytes)


async def test_without_the_directory_a_clip_reads_the_index_window(env: Env) -> None:
    ep = await env.register("vbr", duration_s=120)
    env.handler = ClipHandler(
        episodes=EpisodeStore(database(connect(env.settings), env.settings), directories=False),
        clips=env.clips,
        media=env.media, cutter=env.cutter, config=ClipConfig(600_000, 3600),
    )  # fmt: skip
    await env.clip(ep.episode_id, 60_000, 5000)
    read = env.cutter.last_bytes_read
    assert read is not None and env.cutter.directory_windows == 0
    assert env.cutter.windows.blocks.gets == 1
    # 5 s of a ~120 s file plus pre-roll and one index step either side: well under 10%.
    assert read < ep.size_bytes * 0.1, (read, ep.size_bytes)


async def test_cover_art_is_dropped_and_metadata_probed(env: Env) -> None:
    ep = await env.register("cbr")
    assert (ep.codec, ep.sample_rate, ep.seek_indexed) == ("mp3", 44100, True)
    assert abs(ep.duration_ms - 60_000) <= MP3_FRAME_MS
    ready = await env.clip(ep.episode_id, 1000, 2000)
    probe = await env.ffmpeg.probe(ready.clip_url)
    assert not probe.has_video
    async with httpx.AsyncClient() as client:
        body = (await client.get(ready.clip_url)).content
    assert b"\x89PNG" not in body


async def test_second_request_is_a_cache_hit(env: Env) -> None:
    ep = await env.register("cbr")
    first = await env.clip(ep.episode_id, 5000, 3000)
    second = await env.clip(ep.episode_id, 5000, 3000)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert first.s3_key == second.s3_key and first.size_bytes == second.size_bytes
    assert CountingCutter.cuts == 1


async def test_twenty_concurrent_identical_requests_make_one_object(env: Env) -> None:
    ep = await env.register("vbr")
    results = await asyncio.gather(*(env.clip(ep.episode_id, 2000, 4000) for _ in range(20)))
    assert {r.s3_key for r in results} == {results[0].s3_key}
    assert CountingCutter.cuts == 1
    assert await env.media.list_keys(f"audio_clips/acme/{ep.episode_id}/") == [results[0].s3_key]
    db = database(connect(env.settings), env.settings)
    assert await db["audio_clips"].count_documents({"episode_id": ep.episode_id}) == 1


async def test_clip_past_the_end_is_clamped(env: Env) -> None:
    ep = await env.register("cbr", duration_s=20)
    ready = await env.clip(ep.episode_id, 18_000, 5000)
    assert ready.end_ms == ep.duration_ms
    samples = audio.decode(await fetch(ready.clip_url, env.tmp / "end.mp3"))
    assert abs(audio.duration_ms(samples) - (ep.duration_ms - 18_000)) <= MP3_FRAME_MS


@pytest.mark.parametrize(
    ("episode_id", "start", "dur", "code"),
    [
        ("nope", 0, 1000, "episode_not_found"),
        ("ep-cbr", 0, 600_001, "duration_too_long"),
        ("ep-cbr", 60_000, 1000, "start_past_end"),
        ("ep-cbr", 99_999_999, 1000, "start_past_end"),
    ],
)
async def test_bad_requests_fail_with_their_code(
    env: Env, episode_id: str, start: int, dur: int, code: str
) -> None:
    await env.register("cbr")
    with pytest.raises(ClipRejected) as exc:
        await env.clip(episode_id, start, dur)
    assert exc.value.code == code
    assert CountingCutter.cuts == 0


async def test_missing_source_and_non_audio_source(env: Env) -> None:
    ep = await env.register("cbr")
    await env.media.delete(ep.s3_key)
    with pytest.raises(ClipRejected) as missing:
        await env.clip(ep.episode_id, 0, 1000)
    assert missing.value.code == "source_missing"

    ep2 = await env.register("wav", episode_id="ep-garbage")
    text = env.tmp / "garbage.txt"
    text.write_text("this is not audio\n" * 20000)
    await env.media.upload_file(ep2.s3_key, text)
    with pytest.raises(SourceUnreadable) as unreadable:
        await env.clip(ep2.episode_id, 0, 1000)
    assert unreadable.value.code == "source_unreadable"


async def test_a_source_shrunk_in_storage_is_a_source_problem(env: Env) -> None:
    ep = await env.register("cbr")
    stub = env.tmp / "stub.mp3"
    stub.write_bytes(b"ID3")
    await env.media.upload_file(ep.s3_key, stub)
    with pytest.raises(PermanentError) as exc:
        await env.clip(ep.episode_id, 30_000, 1000)
    # Not the caller's range: the stored source no longer has the bytes it was indexed with.
    assert kind_of(exc.value.code) is Kind.SOURCE, exc.value


async def test_episodes_without_the_binary_index_still_clip_right(env: Env) -> None:
    ep = await env.register("vbr", duration_s=30)
    index = await env.episodes.seek_index("acme", ep.episode_id)
    # Registered before the binary index existed: only the MongoDB copy.
    legacy = ep.model_copy(update={"episode_id": "ep-legacy", "seek_index_key": None})
    await env.episodes.insert(legacy, index)
    # And one whose binary index was lost from storage.
    assert ep.seek_index_key is not None
    await env.media.delete(ep.seek_index_key)
    for episode_id in ("ep-legacy", ep.episode_id):
        ready = await env.clip(episode_id, 8000, 4000)
        samples = audio.decode(await fetch(ready.clip_url, env.tmp / f"{episode_id}.mp3"))
        assert abs(audio.duration_ms(samples) - 4000) <= MP3_FRAME_MS
        found = audio.change_point_ms(samples, 400, 500, 1700, 2300)
        assert abs(found - 2000) <= MP3_FRAME_MS + 1, (episode_id, found)


def _offset_of(clip: array, source: array, near: int, skip: int = 10_000, n: int = 512) -> int:
    """Where the clip's sample 0 sits in the source, to the sample. The first frames of a
    clip decode without their predecessors' overlap and bit reservoir (a VBR encoder may
    lean on it for several frames); past them the copied frames decode to the source's
    own samples."""
    want = clip[skip : skip + n]
    best: tuple[int, int] | None = None
    for offset in range(max(0, near - 2400), near + 2400):
        got = source[offset + skip : offset + skip + n]
        if len(got) < n:
            break
        if max(abs(a - b) for a, b in zip(want[:32], got[:32], strict=True)) > 2:
            continue
        err = max(abs(a - b) for a, b in zip(want, got, strict=True))
        if best is None or err < best[1]:
            best = (offset, err)
    assert best is not None and best[1] <= 2, best
    return best[0]


@pytest.mark.parametrize("kind", ["cbr", "vbr"])
async def test_stream_copied_mp3_clips_start_at_the_nearest_frame_edge_exactly(
    env: Env, kind: str
) -> None:
    ep = await env.register(kind, duration_s=30)
    source = audio.decode(await fetch(await env.media.presign_get(ep.s3_key, 600),
                                      env.tmp / f"source.{kind}.mp3"))  # fmt: skip
    # Heard (gapless-trimmed) sample positions of frame edges: frame k starts at
    # k*1152 - skip in the source; a clip's own tag drops the decoder's 529 samples.
    edges = [k * 1152 + 529 - ep.start_skip_samples for k in range(1, 1100)]
    for k, past in ((200, 300), (431, 700), (777, 1000)):
        start_sample = edges[k] + past  # between two edges, off the nearest by <= 576
        start_ms = round(start_sample * 1000 / 44100)
        want = min(edges, key=lambda e: abs(e - start_ms * 44100 / 1000))
        ready = await env.clip(ep.episode_id, start_ms, 3000)
        clip = audio.decode(await fetch(ready.clip_url, env.tmp / f"c{k}.mp3"))
        assert _offset_of(clip, source, want) == want, (kind, k)
