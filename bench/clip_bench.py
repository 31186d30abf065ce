"""Clip benchmark: an uncached MP3 clip against its floor, on 10-minute to 3-hour episodes.

*Ours* is :class:`~services.clipper.handler.ClipHandler` with the real adapters
(EpisodeStore, ClipStore, MediaStore, FFmpegCutter) on the local stack, in its default
mode (stream copy): the byte window from the episode's seek directory (no read), one
ranged GET of it beside the cache check, the frames cut in process, one PUT; the answer
goes out then, and the clip's record and request log are written after it (waited for
before the next timing, so they do not overlap it).

The **floor** is what no clip path can avoid: a ranged GET of the bytes the clip needs
(its window by the seek index, which the directory's window covers and overruns by up to
a step each side) plus a PUT of the clip's bytes, timed right after each of our requests
in the same run.

The suite's figures (``run``): per source, the uncached clip's median against the floor
(target: within 2x), the same clip through the old ffmpeg path (ffprobe + ffmpeg
processes on the same window), the same without the directory (a ranged GET of index
records first, with the index cache empty), a cache hit; and the clipper's memory on a
1 GB source (:mod:`bench.clip_memory`). Every measured uncached request asks for a new
range.

The command line compares ours with the *naive* path (what the old Lambda did: download
the whole episode, re-encode the range, upload):

    python -m bench.clip_bench [--durations 600,3600,10800] [--reps 9] [--clip-s 30]

Everything runs in its own MongoDB database and S3 key prefix, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from bench.clip_memory import measure as measure_memory
from bench.figures import BenchContext, Figure
from bench.sources import cache_dir, ensure_source
from schemas.clip import ClipReady, ClipRequested
from schemas.names import Stage
from services.clipper.cutter import Cut, FFmpegCutter
from services.clipper.episode_cache import CachedEpisodes
from services.clipper.handler import ClipConfig, ClipHandler
from services.clipper.seek_windows import SeekWindows, Window
from services.common.clip_rules import ClipPlan
from services.common.clips import ClipStore
from services.common.context import StageContext
from services.common.episodes import Episode, EpisodeStore
from services.common.ffmpeg import FFmpeg, temp_workdir
from services.common.media_store import MediaStore
from services.common.mongo import Doc, connect, database
from services.common.registration import register_file
from services.common.settings import Settings

TENANT = "bench"
# Off the MP3 frame grid (26.12 ms), so no start happens to fall on a frame edge.
START_JITTER_MS = 317
TARGET_RATIO = 2.0


class _NoCheckpoints:
    """The clip stage saves no checkpoints; the bench times the handler alone."""

    async def load(self, stage: str, event_id: str, step: str) -> None:
        return None

    async def save(self, stage: str, event_id: str, step: str, result: object) -> None:
        return None


_NO_CHECKPOINTS = _NoCheckpoints()


def log(msg: str) -> None:
    print(msg, flush=True)


# -- measurements -----------------------------------------------------------------------------


@dataclass
class Sample:
    start_ms: int
    latency_ms: float
    bytes_read: int
    clip_bytes: int
    cut_ms: float | None = None  # time inside the cutter (index, ranged GET, cut)
    floor_ms: float | None = None  # ranged GET of the index's window + PUT of the clip's bytes
    floor_bytes: int | None = None  # the index's window: what the clip needs read


class RecordingWindows(SeekWindows):
    """The real window lookup, remembering the last window it gave."""

    last: Window | None = None

    async def window(
        self, episode: Episode, start_ms: float, end_ms: float, preroll_ms: int = 500
    ) -> Window | None:
        self.last = await super().window(episode, start_ms, end_ms, preroll_ms)
        return self.last


class TimedCutter(FFmpegCutter):
    """The real cutter, noting how long its last cut took, what it read and wrote."""

    last_cut_ms: float | None = None
    last_bytes_read: int | None = None
    last_clip: bytes | None = None

    @contextlib.asynccontextmanager
    async def cut(self, episode: Episode, plan: ClipPlan) -> AsyncIterator[Cut]:
        t0 = time.perf_counter()
        async with super().cut(episode, plan) as result:
            self.last_cut_ms = (time.perf_counter() - t0) * 1000
            self.last_bytes_read = result.bytes_read
            self.last_clip = result.path.read_bytes()  # small: in place, not via a thread
            yield result


@dataclass
class Bench:
    settings: Settings
    episodes: EpisodeStore
    media: MediaStore
    ffmpeg: FFmpeg
    cutter: TimedCutter
    windows: RecordingWindows
    handler: ClipHandler
    clip_ms: int
    scratch: Path

    @classmethod
    def make(
        cls, settings: Settings, episodes: EpisodeStore, clips: ClipStore, media: MediaStore,
        clip_ms: int, scratch: Path, *, in_process: bool = True,
    ) -> Bench:  # fmt: skip
        """The clip handler with the real adapters; ``in_process=False`` cuts MP3 stream
        copies with ffmpeg, as before the in-process cutter."""
        ffmpeg = FFmpeg.from_settings(settings)
        windows = RecordingWindows(media, episodes)
        cutter = TimedCutter(media, ffmpeg, episodes, in_process_mp3=in_process, windows=windows)
        handler = ClipHandler(
            episodes=CachedEpisodes(episodes), clips=clips, media=media, cutter=cutter,
            config=ClipConfig(settings.clip_max_duration_ms, settings.clip_url_expiry_s),
        )  # fmt: skip
        return cls(settings, episodes, media, ffmpeg, cutter, windows, handler, clip_ms, scratch)

    async def ours(self, episode: Episode, start_ms: int, *, expect_hit: bool) -> Sample:
        req = ClipRequested(
            request_id=uuid.uuid4().hex,
            tenant_id=TENANT,
            producer="bench",
            episode_id=episode.episode_id,
            start_ms=start_ms,
            duration_ms=self.clip_ms,
        )
        self.cutter.last_cut_ms = None
        before = self.media.bytes_read
        t0 = time.perf_counter()
        ctx = StageContext(Stage.CLIP, req, 1, time.monotonic() + 600, _NO_CHECKPOINTS)
        (ready,) = await self.handler(req, ctx)
        latency = (time.perf_counter() - t0) * 1000
        # The record and the request log, written after the answer: done before the next
        # timing (the floor's, or the next clip's).
        await self.handler.settle()
        read = self.media.bytes_read - before
        assert isinstance(ready, ClipReady)
        if ready.cache_hit != expect_hit:
            raise RuntimeError(f"expected cache_hit={expect_hit} for {ready.s3_key}")
        cut_read = self.cutter.last_bytes_read
        if not expect_hit and cut_read is not None and read < cut_read:
            raise RuntimeError(f"cutter read {cut_read} B, S3 counted {read}")
        # The floor reads what the clip needs, the seek index's window, whatever the cut
        # read (from the directory, a few seconds more): looked up after the timing.
        shift_ms = episode.start_skip_samples * 1000 / (episode.sample_rate or 44100)
        window = await self.windows.window(
            episode, ready.start_ms + shift_ms, ready.end_ms + shift_ms
        )
        needed = window.last - window.first + 1 if window is not None else None
        return Sample(start_ms, latency, read, ready.size_bytes, self.cutter.last_cut_ms,
                      floor_bytes=needed)  # fmt: skip

    async def floor(self, episode: Episode) -> float:
        """A ranged GET of the seek index's window for the last clip, and a PUT of it."""
        window, clip = self.windows.last, self.cutter.last_clip
        if window is None or clip is None:
            raise RuntimeError("the last cut read no window: no floor to measure")
        path = self.scratch / "floor-clip.mp3"
        await asyncio.to_thread(path.write_bytes, clip)
        t0 = time.perf_counter()
        await self.media.get_range(episode.s3_key, window.first, window.last)
        await self.media.upload_file(f"floor/{uuid.uuid4().hex}.mp3", path, "audio/mpeg")
        return (time.perf_counter() - t0) * 1000

    async def naive(self, episode: Episode, start_ms: int) -> Sample:
        """Whole download, re-encoding cut from the local file, upload."""
        end_ms = min(start_ms + self.clip_ms, episode.duration_ms)
        key = f"naive_clips/{episode.episode_id}/{start_ms}-{end_ms}.mp3"
        before = self.media.bytes_read
        t0 = time.perf_counter()
        async with temp_workdir(prefix="tapedeck-bench-naive-") as tmp:
            src, out = tmp / "source.mp3", tmp / "clip.mp3"
            await self.media.download_file(episode.s3_key, src)
            stream = self.ffmpeg.input(src, ss=f"{start_ms / 1000:.3f}").output(
                str(out), t=f"{(end_ms - start_ms) / 1000:.3f}", map="0:a:0",
                map_metadata="-1", acodec="libmp3lame", audio_bitrate="128k", format="mp3",
            )  # fmt: skip
            await self.ffmpeg.run(stream)
            size = await self.media.upload_file(key, out, "audio/mpeg")
        latency = (time.perf_counter() - t0) * 1000
        return Sample(start_ms, latency, self.media.bytes_read - before, size)

    async def index_load_ms(self, episode_id: str, times: int = 5) -> tuple[float, int]:
        """The MongoDB copy of the index (what clips loaded before the binary index)."""
        took: list[float] = []
        entries = 0
        for _ in range(times):
            t0 = time.perf_counter()
            index = await self.episodes.seek_index(TENANT, episode_id)
            took.append((time.perf_counter() - t0) * 1000)
            entries = len(index.times_ms) if index else 0
        return median(took), entries


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def starts(duration_ms: int, clip_ms: int, n: int) -> list[int]:
    """``n`` clip starts spread evenly over the episode (middles of ``n`` equal slices)."""
    span = max(duration_ms - clip_ms, 0)
    return [min(round((i + 0.5) / n * span) + START_JITTER_MS, span) for i in range(n)]


def _label(duration_s: int) -> str:
    if duration_s % 3600 == 0:
        return f"{duration_s // 3600} h"
    if duration_s % 60 == 0:
        return f"{duration_s // 60} min"
    return f"{duration_s} s"


@contextlib.asynccontextmanager
async def stores(
    settings: Settings,
) -> AsyncIterator[tuple[MediaStore, AsyncDatabase[Doc], EpisodeStore, ClipStore]]:
    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        async with MediaStore.from_settings(settings) as media:
            await media.ensure_bucket()
            db = database(mongo, settings)
            episodes, clips = EpisodeStore(db), ClipStore(db)
            await episodes.ensure_indexes()
            await clips.ensure_collections()
            yield media, db, episodes, clips
    finally:
        await mongo.close()


async def register(
    bench: Bench, path: Path, duration_s: int, say: Any, *, cbr: bool = False
) -> tuple[Episode, float]:
    t0 = time.perf_counter()
    ep = await register_file(
        path, episode_id=f"bench-{duration_s}s{'-cbr' if cbr else ''}", tenant_id=TENANT,
        filename=path.name,
        store=bench.episodes, media=bench.media, ffmpeg=bench.ffmpeg,
    )  # fmt: skip
    took = (time.perf_counter() - t0) * 1000
    say(f"registered {_label(duration_s):>6}: {ep.size_bytes / 1e6:.1f} MB, "
        f"{ep.duration_ms / 1000:.0f} s, seek index={ep.seek_indexed}, {took:.0f} ms")  # fmt: skip
    return ep, took


# -- the suite's figures ----------------------------------------------------------------------


@dataclass
class SourceFigures:
    duration_s: int
    ours: list[Sample] = field(default_factory=list)
    old: list[Sample] = field(default_factory=list)
    indexed: list[Sample] = field(default_factory=list)  # without the directory
    hit: Sample | None = None
    guesses: Counter[str] = field(default_factory=Counter)


async def run(ctx: BenchContext, *, smoke: bool) -> list[Figure]:
    """Uncached MP3 clips against their floor per source, the old path, a cache hit, and
    the clipper's memory on a 1 GB source."""
    durations = [60] if smoke else [600, 3600, 10800]
    clip_ms = 5000 if smoke else 30_000
    reps, old_reps, index_reps = (2, 1, 1) if smoke else (15, 5, 5)
    paths = {d: await asyncio.to_thread(ensure_source, d, ctx.cache_dir, log=ctx.log)
             for d in durations}  # fmt: skip
    # One constant-rate source, at the middle length: there the window is read together
    # with the index records, not after them.
    cbr_s = durations[len(durations) // 2]
    cbr_path = await asyncio.to_thread(ensure_source, cbr_s, ctx.cache_dir, log=ctx.log, cbr=True)
    results: list[SourceFigures] = []
    cbr: SourceFigures | None = None
    async with stores(ctx.settings) as (media, db, episodes, clips):
        with tempfile.TemporaryDirectory(prefix="tapedeck-bench-clip-") as scratch:
            args = (ctx.settings, episodes, clips, media, clip_ms, Path(scratch))
            ours, old = Bench.make(*args), Bench.make(*args, in_process=False)
            # The same clips from episodes read without their directory: the index's path.
            indexed = Bench.make(ctx.settings, EpisodeStore(db, directories=False), clips,
                                 media, clip_ms, Path(scratch))  # fmt: skip
            registered = {d: (await register(ours, paths[d], d, ctx.log))[0] for d in durations}
            # Warm-up, not measured: connections, the first ffmpeg runs, the page cache.
            first = registered[durations[0]]
            await ours.ours(first, 0, expect_hit=False)
            await ours.floor(first)
            await old.ours(first, 1000, expect_hit=False)
            for d in durations:
                results.append(await _measure_source(ctx, (ours, old, indexed), registered[d],
                                                     d, (reps, old_reps, index_reps)))  # fmt: skip
            cbr_ep = (await register(ours, cbr_path, cbr_s, ctx.log, cbr=True))[0]
            before = Counter(indexed.cutter.guesses)
            cbr = await _measure_source(ctx, (ours, old, indexed), cbr_ep, cbr_s,
                                        (reps, 0, index_reps))  # fmt: skip
            cbr.guesses = Counter(indexed.cutter.guesses) - before
    figures = [f for r in results for f in _source_figures(r, clip_ms)]
    if cbr is not None:
        figures.append(_cbr_figure(cbr, clip_ms))
    figures.append(await measure_memory(ctx, smoke=smoke))
    return figures


async def _measure_source(
    ctx: BenchContext,
    paths: tuple[Bench, Bench, Bench],
    ep: Episode,
    duration_s: int,
    counts: tuple[int, int, int],
) -> SourceFigures:
    """``paths``: ours, the old ffmpeg path, ours without the seek directory; ``counts``:
    the requests each makes."""
    ours, old, indexed = paths
    reps, old_reps, index_reps = counts
    label = _label(duration_s)
    out = SourceFigures(duration_s)
    # Distinct ranges for every request (each a cache miss), spread over the episode.
    mine = starts(ep.duration_ms, ours.clip_ms, reps)
    olds = [s + 1009 for s in starts(ep.duration_ms, ours.clip_ms, old_reps)]
    by_index = [s + 2011 for s in starts(ep.duration_ms, ours.clip_ms, index_reps)]
    for i in range(max(reps, old_reps)):
        if i < len(mine):
            ours.windows.blocks.clear()  # a clip the directory cannot serve pays its index read
            s = await ours.ours(ep, mine[i], expect_hit=False)
            s.floor_ms = await ours.floor(ep)
            out.ours.append(s)
            ctx.log(f"[{label:>6}] ours  {i + 1}/{reps} @{s.start_ms / 1000:8.1f} s: "
                    f"{s.latency_ms:6.1f} ms (floor {s.floor_ms:5.1f} ms), "
                    f"{s.bytes_read / 1e3:6.1f} kB read")  # fmt: skip
        if i < len(olds):
            old.windows.blocks.clear()
            s = await old.ours(ep, olds[i], expect_hit=False)
            out.old.append(s)
            ctx.log(f"[{label:>6}] old   {i + 1}/{old_reps} @{s.start_ms / 1000:8.1f} s: "
                    f"{s.latency_ms:6.1f} ms")  # fmt: skip
    for start in by_index:  # each pays a ranged GET of index records first
        indexed.windows.blocks.clear()
        out.indexed.append(await indexed.ours(ep, start, expect_hit=False))
    out.hit = await ours.ours(ep, mine[0], expect_hit=True)
    ctx.log(f"[{label:>6}] cache hit: {out.hit.latency_ms:.1f} ms")
    return out


def _source_figures(r: SourceFigures, clip_ms: int) -> list[Figure]:
    label = _label(r.duration_s)
    clip = f"{clip_ms / 1000:g} s MP3 clip, {label} source"
    ours = median([s.latency_ms for s in r.ours])
    floor = median([s.floor_ms for s in r.ours if s.floor_ms is not None])
    old = median([s.latency_ms for s in r.old])
    by_index = median([s.latency_ms for s in r.indexed])
    read = median([s.bytes_read for s in r.ours])
    needed = median([s.floor_bytes for s in r.ours if s.floor_bytes is not None])
    # Each request and its floor were timed back to back: their ratio is steadier than
    # the ratio of the medians when other work on the machine comes and goes.
    pairs = median([s.latency_ms / s.floor_ms for s in r.ours if s.floor_ms])
    floor_name = "floor: ranged GET of the clip's index window + PUT of the clip"
    x = ours / floor if floor else float("nan")
    return [
        Figure(
            "clip", f"uncached {clip}", round(ours, 1), "ms", baseline_name=floor_name,
            baseline=round(floor, 1), ratio=round(x, 2), target=f"<= {TARGET_RATIO:g}x floor",
            met=x <= TARGET_RATIO,
            note=f"median of {len(r.ours)}; in-process stream copy, window from the episode's "
                 f"seek directory (no index read); {read / 1e3:.0f} kB read per clip, "
                 f"{needed / 1e3:.0f} kB its index window (what the floor reads); median of the "
                 f"per-request ratios to the floor timed right after each: {pairs:.2f}x; "
                 f"without the directory (index records read first): {by_index:.1f} ms",
        ),
        Figure(
            "clip", f"uncached {clip}, old ffmpeg path", round(old, 1), "ms",
            baseline_name=floor_name, baseline=round(floor, 1),
            ratio=round(old / floor, 2) if floor else None,
            note=f"median of {len(r.old)}; the same window cut by ffprobe + ffmpeg processes "
                 "(the path before the in-process cutter), for comparison",
        ),
        Figure(
            "clip", f"cache hit, {clip}", round(r.hit.latency_ms if r.hit else float("nan"), 1),
            "ms", note="HEAD of the clip, a presigned URL (its record checked and the request "
                       "logged after the answer); 1 run",
        ),
    ]  # fmt: skip


def _cbr_figure(r: SourceFigures, clip_ms: int) -> Figure:
    first = _source_figures(r, clip_ms)[0]
    name = first.name.replace(" source", " constant 64 kbit/s source")
    # Without the directory, every request of this source guesses its window (beside
    # the index read): these are those requests' guesses.
    tried = r.guesses["hit"] + r.guesses["miss"]
    guessed = (f"without the directory, window guessed with the index records: "
               f"{r.guesses['hit']} of {tried} guesses hit")  # fmt: skip
    return replace(first, name=name, note=f"{first.note}; {guessed}")


# -- the command line: ours against the naive path --------------------------------------------


@dataclass
class SourceRun:
    duration_s: int
    size_bytes: int
    register_ms: float
    index_entries: int
    index_load_ms: float  # median time to load the episode's MongoDB index copy
    ours: list[Sample] = field(default_factory=list)
    hit: Sample | None = None
    naive: list[Sample] = field(default_factory=list)


def _check_stack(settings: Settings) -> None:
    endpoints = {
        "mongo": settings.mongo_url.removeprefix("mongodb://").split("/")[0].split(",")[0],
        "s3": (settings.s3_endpoint or "").split("://")[-1].split("/")[0],
    }
    for name, hostport in endpoints.items():
        if not hostport or ":" not in hostport:
            continue
        host, port = hostport.rsplit(":", 1)
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex((host, int(port))) != 0:
                raise SystemExit(f"{name} does not answer on {hostport}: run `make up` first")


@contextlib.asynccontextmanager
async def isolated(
    base: Settings,
) -> AsyncIterator[tuple[Settings, MediaStore, AsyncDatabase[Doc]]]:
    """A fresh database and S3 key prefix for this run, removed afterwards whatever happens."""
    run_id = uuid.uuid4().hex[:12]
    settings = base.model_copy(
        update={
            "topic_prefix": f"bench{run_id}.",
            "mongo_db": f"bench_{run_id}",
            "s3_key_prefix": f"bench/{run_id}/",
        }
    )
    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        async with MediaStore.from_settings(settings) as media:
            try:
                await media.ensure_bucket()
                yield settings, media, database(mongo, settings)
            finally:
                try:
                    removed = await asyncio.shield(media.delete_prefix(""))
                    log(f"cleanup: removed {removed} objects under {settings.s3_key_prefix}")
                except Exception as exc:
                    log(f"cleanup: could not empty {settings.s3_key_prefix}: {exc!r}")
    finally:
        try:
            await asyncio.shield(mongo.drop_database(settings.mongo_db))
            log(f"cleanup: dropped database {settings.mongo_db}")
        except Exception as exc:
            log(f"cleanup: could not drop {settings.mongo_db}: {exc!r}")
        await mongo.close()


async def compare(durations: list[int], reps: int, naive_reps: int, clip_ms: int) -> dict[str, Any]:
    base = Settings()
    _check_stack(base)
    load_start = os.getloadavg()
    if load_start[0] > 0.5 * (_cpus() or 1):
        log(
            f"note: load average {load_start[0]:.2f} before the run; other work on this "
            "machine will show in the figures"
        )
    log(f"sources (cached in {cache_dir()}):")
    paths = {d: ensure_source(d, ffmpeg_bin=base.ffmpeg_bin, log=log) for d in durations}
    runs: list[SourceRun] = []
    async with isolated(base) as (settings, media, db):
        log(f"run namespace: mongo db {settings.mongo_db}, s3 prefix {settings.s3_key_prefix}")
        episodes, clips = EpisodeStore(db), ClipStore(db)
        await episodes.ensure_indexes()
        await clips.ensure_collections()
        with tempfile.TemporaryDirectory(prefix="tapedeck-bench-clip-") as scratch:
            bench = Bench.make(settings, episodes, clips, media, clip_ms, Path(scratch))
            registered = {d: await register(bench, paths[d], d, log) for d in durations}

            # Warm-up, not measured: connections, first ffmpeg runs, page cache of the tools.
            first = registered[durations[0]][0]
            await bench.ours(first, 0, expect_hit=False)
            await bench.naive(first, 0)

            for d in durations:
                ep, reg_ms = registered[d]
                load_ms, entries = await bench.index_load_ms(ep.episode_id)
                sr = SourceRun(d, ep.size_bytes, reg_ms, entries, load_ms)
                label = _label(d)
                # Interleaved, so anything else on the machine weighs on both paths alike.
                ours_starts = starts(ep.duration_ms, clip_ms, reps)
                naive_starts = starts(ep.duration_ms, clip_ms, naive_reps)
                for i in range(max(reps, naive_reps)):
                    if i < reps:
                        s = await bench.ours(ep, ours_starts[i], expect_hit=False)
                        sr.ours.append(s)
                        log(
                            f"[{label:>6}] ours  {i + 1}/{reps} @{s.start_ms / 1000:8.1f} s: "
                            f"{s.latency_ms:7.0f} ms, {s.bytes_read / 1e3:8.1f} kB read"
                        )
                    if i < naive_reps:
                        s = await bench.naive(ep, naive_starts[i])
                        sr.naive.append(s)
                        log(
                            f"[{label:>6}] naive {i + 1}/{naive_reps} "
                            f"@{s.start_ms / 1000:8.1f} s: "
                            f"{s.latency_ms:7.0f} ms, {s.bytes_read / 1e6:8.1f} MB read"
                        )
                sr.hit = await bench.ours(ep, sr.ours[0].start_ms, expect_hit=True)
                log(f"[{label:>6}] ours  cache hit: {sr.hit.latency_ms:.0f} ms")
                runs.append(sr)
    result = summarize(runs, reps, naive_reps, clip_ms)
    result["loadavg_1m"] = {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)}
    return result


# -- report -----------------------------------------------------------------------------------


def summarize(runs: list[SourceRun], reps: int, naive_reps: int, clip_ms: int) -> dict[str, Any]:
    sources: list[dict[str, Any]] = []
    for r in runs:
        ours_ms = median([s.latency_ms for s in r.ours])
        ours_b = median([s.bytes_read for s in r.ours])
        naive_ms = median([s.latency_ms for s in r.naive])
        naive_b = median([s.bytes_read for s in r.naive])
        cut = [s.cut_ms for s in r.ours if s.cut_ms is not None]
        sources.append(
            {
                "duration_s": r.duration_s,
                "label": _label(r.duration_s),
                "size_bytes": r.size_bytes,
                "register_ms": round(r.register_ms),
                "seek_index_entries": r.index_entries,
                "seek_index_load_ms": round(r.index_load_ms, 1),
                "ours": {
                    "median_latency_ms": round(ours_ms, 1),
                    "median_bytes_read": round(ours_b),
                    "min_latency_ms": round(min(s.latency_ms for s in r.ours), 1),
                    "max_latency_ms": round(max(s.latency_ms for s in r.ours), 1),
                    "median_cut_ms": round(median(cut), 1) if cut else None,
                    "median_clip_bytes": round(median([s.clip_bytes for s in r.ours])),
                    "cache_hit_latency_ms": round(r.hit.latency_ms, 1) if r.hit else None,
                    "cache_hit_bytes_read": r.hit.bytes_read if r.hit else None,
                    "samples": [asdict(s) for s in r.ours],
                },
                "naive": {
                    "median_latency_ms": round(naive_ms, 1),
                    "median_bytes_read": round(naive_b),
                    "min_latency_ms": round(min(s.latency_ms for s in r.naive), 1),
                    "max_latency_ms": round(max(s.latency_ms for s in r.naive), 1),
                    "samples": [asdict(s) for s in r.naive],
                },
                "naive_over_ours": {
                    "latency": ratio(naive_ms, ours_ms),
                    "bytes_read": ratio(naive_b, ours_b),
                },
            }
        )
    result: dict[str, Any] = {
        "benchmark": "clip",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "clip_ms": clip_ms,
        "reps": reps,
        "naive_reps": naive_reps,
        "cpus": _cpus(),
        "sources": sources,
    }
    if len(sources) >= 2:
        short, long = sources[0], sources[-1]
        result["ours_longest_over_shortest"] = {
            "longest_s": long["duration_s"],
            "shortest_s": short["duration_s"],
            "latency": ratio(long["ours"]["median_latency_ms"], short["ours"]["median_latency_ms"]),
            "bytes_read": ratio(
                long["ours"]["median_bytes_read"], short["ours"]["median_bytes_read"]
            ),
        }
    return result


def without_samples(result: dict[str, Any]) -> dict[str, Any]:
    """The summary without per-request samples: what the one-line JSON on stdout carries."""
    sources = [
        {**s, **{p: {k: v for k, v in s[p].items() if k != "samples"} for p in ("ours", "naive")}}
        for s in result["sources"]
    ]
    return {**result, "sources": sources}


def _cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _spread(path: dict[str, Any]) -> str:
    return f"{path['min_latency_ms']:.0f}-{path['max_latency_ms']:.0f} ms"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def render(result: dict[str, Any]) -> str:
    head = (
        "| source | size | ours p50 | ours read | naive p50 | naive read "
        "| naive/ours latency | naive/ours bytes | ours cache hit |"
    )
    lines = [
        f"{result['clip_ms'] / 1000:g} s clips, median of {result['reps']} requests "
        f"({result['naive_reps']} naive) per source, {result['cpus']} CPUs, "
        f"load average {result['loadavg_1m']['start']:.2f} at the start",
        "",
        head,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in result["sources"]:
        o, n, r = s["ours"], s["naive"], s["naive_over_ours"]
        lines.append(
            f"| {s['label']} | {_bytes(s['size_bytes'])} "
            f"| {o['median_latency_ms']:.0f} ms | {_bytes(o['median_bytes_read'])} "
            f"| {n['median_latency_ms']:.0f} ms | {_bytes(n['median_bytes_read'])} "
            f"| {_x(r['latency'])} | {_x(r['bytes_read'])} "
            f"| {o['cache_hit_latency_ms']:.0f} ms |"
        )
    lines += [
        "",
        "| source | registration | seek index entries | MongoDB index load p50 | ours cut p50 "
        "| ours min-max | naive min-max | clip size |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in result["sources"]:
        cut = s["ours"]["median_cut_ms"]
        lines.append(
            f"| {s['label']} | {s['register_ms'] / 1000:.1f} s | {s['seek_index_entries']} "
            f"| {s['seek_index_load_ms']:.0f} ms | {'-' if cut is None else f'{cut:.0f} ms'} "
            f"| {_spread(s['ours'])} | {_spread(s['naive'])} "
            f"| {_bytes(s['ours']['median_clip_bytes'])} |"
        )
    cmp = result.get("ours_longest_over_shortest")
    if cmp:
        lines += [
            "",
            f"ours, {_label(cmp['longest_s'])} vs {_label(cmp['shortest_s'])} source: "
            f"latency {_x(cmp['latency'])}, bytes read {_x(cmp['bytes_read'])} "
            "(1.0x = a clip costs the same whatever the episode length)",
        ]
    return "\n".join(lines)


# -- CLI --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.clip_bench", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument(
        "--durations",
        default="600,3600,10800",
        help="source durations in seconds, comma separated (default: 600,3600,10800)",
    )
    p.add_argument("--reps", type=int, default=9, help="requests per source and path (default 9)")
    p.add_argument(
        "--naive-reps", type=int, default=None, help="requests per source for the naive path"
    )
    p.add_argument("--clip-s", type=float, default=30.0, help="clip length in seconds (default 30)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results file (default: $STACK_DIR/bench/clip_bench.json)",
    )
    args = p.parse_args(argv)
    try:
        args.durations = sorted({int(x) for x in args.durations.split(",") if x.strip()})
    except ValueError:
        p.error("--durations must be whole seconds, comma separated")
    clip_ms = round(args.clip_s * 1000)
    if not args.durations or min(args.durations) * 1000 <= clip_ms:
        p.error("every source must be longer than the clip")
    if args.reps < 1 or (args.naive_reps is not None and args.naive_reps < 1):
        p.error("--reps and --naive-reps must be >= 1")
    if not 0 < clip_ms <= Settings().clip_max_duration_ms:
        p.error("--clip-s must be positive and within CLIP_MAX_DURATION_MS")
    args.clip_ms = clip_ms
    args.naive_reps = args.naive_reps or args.reps
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        result = asyncio.run(compare(args.durations, args.reps, args.naive_reps, args.clip_ms))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    result["wall_s"] = round(time.monotonic() - started, 1)
    out: Path = args.out or cache_dir() / "clip_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(render(result))
    print()
    print(json.dumps(without_samples(result), separators=(",", ":")))
    log(f"\nwritten to {out} (whole run {result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
