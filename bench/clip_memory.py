"""Clipper memory: how far a clipper process grows while it cuts clips out of a 1 GB MP3
source, over its idle size.

The clipper runs as its own process (``python -m services.clipper``, configured through
the environment like production). It first cuts one short warm-up clip, so its idle size
includes the clip path's imports and clients; its resident size (``VmRSS`` from
``/proc``) is then sampled every 20 ms for 2 s at rest, and again while it cuts 30 s
clips and 10-minute ones (the longest allowed) spread over the whole source, four at a
time, until every ``clip.ready`` is on the results topic. ``VmHWM`` (the peak since the
process started) is reported beside it.

The source is a 10-minute stereo VBR MP3 made with ffmpeg lavfi (a tone plus pink noise),
looped by stream copy up to 1 GiB and cached beside the other inputs. Registering it
scans every frame (minutes): the result is cached beside it, so later runs only upload
the source and write its index.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import procs
from bench.figures import BenchContext, Figure, median
from bench.sources import ensure_source
from schemas import TOPICS, decode_event, encode_event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from services.common import seek_index
from services.common.codec import event_headers
from services.common.episodes import Episode, EpisodeStore, SeekIndex
from services.common.ffmpeg import FFmpeg
from services.common.kafka import ensure_topics
from services.common.keys import episode_key
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.registration import register_file
from services.common.settings import Settings

GROUP = "memory"
RECIPE = "v1"
TARGET_MB = 100.0
FULL_BYTES = 1 << 30
TENANT = "bench"
EPISODE_ID = "clip-memory"


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def ensure_big_source(directory: Path, min_bytes: int, say: object = print) -> Path:
    """An MP3 of at least ``min_bytes``, made once and cached."""
    log = say if callable(say) else print
    root = directory / f"clip-memory-{min_bytes}-mp3-{RECIPE}"
    path = root / "source.mp3"
    if path.is_file():
        log(f"[clip memory] source cached: {path} ({path.stat().st_size / 1e6:.0f} MB)")
        return path
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"[clip memory] making a {min_bytes / 1e6:.0f} MB MP3 in {root} (first run only) ...")
    seed = root / ".seed.mp3"
    _ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=600",
             "-f", "lavfi",
             "-i", "anoisesrc=color=pink:amplitude=0.1:sample_rate=44100:duration=600:seed=3",
             "-filter_complex", "[0:a][1:a]amix=inputs=2,aformat=channel_layouts=stereo",
             "-c:a", "libmp3lame", "-q:a", "0", str(seed)])  # fmt: skip
    loops = max(1, math.ceil(min_bytes / seed.stat().st_size))
    part = root / ".source.part.mp3"
    _ffmpeg(["-stream_loop", str(loops - 1), "-i", str(seed), "-c", "copy", "-f", "mp3",
             str(part)])  # fmt: skip
    part.rename(path)
    seed.unlink()
    log(f"[clip memory] made {path.stat().st_size / 1e6:.0f} MB in "
        f"{time.monotonic() - started:.0f} s")  # fmt: skip
    return path


async def register(settings: Settings, path: Path, say: object = print) -> Episode:
    """Register ``path`` in this run's namespace, reusing a cached packet scan of it."""
    log = say if callable(say) else print
    size = (await asyncio.to_thread(path.stat)).st_size
    cached = path.with_name(f"{path.stem}.{size}.registration.json")
    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        store = EpisodeStore(database(mongo, settings))
        await store.ensure_indexes()
        async with MediaStore.from_settings(settings) as media:
            await media.ensure_bucket()
            t0 = time.monotonic()
            if not await asyncio.to_thread(cached.is_file):
                episode = await register_file(
                    path, episode_id=EPISODE_ID, tenant_id=TENANT, filename=path.name,
                    store=store, media=media, ffmpeg=FFmpeg.from_settings(settings),
                )  # fmt: skip
                index = await store.seek_index(TENANT, EPISODE_ID)
                assert index is not None
                saved = {"episode": episode.model_dump(mode="json", exclude={"seek_directory"}),
                         "index": index.model_dump()}  # fmt: skip
                await asyncio.to_thread(cached.write_text, json.dumps(saved))
                log(f"[clip memory] registered in {time.monotonic() - t0:.0f} s (scan cached)")
                return episode
            saved = json.loads(await asyncio.to_thread(cached.read_text))
            index = SeekIndex.model_validate(saved["index"])
            tag = uuid.uuid4().hex[:12]
            key = episode_key(TENANT, EPISODE_ID, f"source-{tag}.mp3")
            index_key = episode_key(TENANT, EPISODE_ID, f"seek-{tag}.idx")
            await media.upload_file(key, path)
            data = seek_index.encode(index)

            async def body() -> AsyncIterator[bytes]:
                yield data

            await media.upload_stream(index_key, body(), "application/octet-stream")
            episode = Episode.model_validate(
                {
                    **saved["episode"],
                    "s3_key": key,
                    "seek_index_key": index_key,
                    "seek_directory": seek_index.encode_directory(index),
                }
            )
            await store.insert(episode, index)
            log(f"[clip memory] uploaded and indexed in {time.monotonic() - t0:.0f} s "
                "(packet scan from the cache)")  # fmt: skip
            return episode
    finally:
        await mongo.close()


def requests(episode: Episode, short_ms: int, long_ms: int, shorts: int, longs: int
             ) -> list[ClipRequested]:  # fmt: skip
    """Clips spread over the whole episode, short and long ones interleaved."""
    out = []
    n = shorts + longs
    for i in range(n):
        dur = long_ms if i % max(1, n // max(1, longs)) == 1 and longs else short_ms
        start = min(round((i + 0.5) / n * (episode.duration_ms - dur)), episode.duration_ms - dur)
        out.append(ClipRequested(request_id=f"mem-{uuid.uuid4().hex[:12]}", tenant_id=TENANT,
                                 producer="bench", episode_id=episode.episode_id,
                                 start_ms=max(0, start), duration_ms=dur))  # fmt: skip
    return out


async def cut_all(settings: Settings, wanted: list[ClipRequested], timeout_s: float) -> float:
    """Produce ``wanted`` at once; the time until every one is ready."""
    topic = TOPICS.clip_requests
    consumer = AIOKafkaConsumer(TOPICS.clip_results.full_name(settings.topic_prefix),
                                bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                auto_offset_reset="latest")  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        await consumer.seek_to_end()
        pending = {r.request_id for r in wanted}
        t0 = time.perf_counter()
        for r in wanted:
            await producer.send_and_wait(topic.full_name(settings.topic_prefix),
                                         value=encode_event(r), key=topic.key_for(r),
                                         headers=event_headers(r))  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(wanted)} clips unanswered")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for rec in records:
                    event = decode_event(rec.value) if rec.value else None
                    if isinstance(event, ClipFailed) and event.request_id in pending:
                        raise RuntimeError(f"clip failed: {event.error.code}")
                    if isinstance(event, ClipReady) and event.request_id in pending:
                        pending.discard(event.request_id)
        return time.perf_counter() - t0
    finally:
        await consumer.stop()
        await producer.stop()


async def measure(ctx: BenchContext, *, smoke: bool) -> Figure:
    if smoke:
        path = await asyncio.to_thread(ensure_source, 60, ctx.cache_dir, log=ctx.log)
    else:
        path = await asyncio.to_thread(ensure_big_source, ctx.cache_dir, FULL_BYTES, ctx.log)
    settings = ctx.settings.model_copy(
        update={"topic_prefix": f"{ctx.settings.topic_prefix}clipmem."}
    )
    episode = await register(settings, path, ctx.log)
    long_ms = min(600_000, settings.clip_max_duration_ms)
    shorts, longs, short_ms = (3, 1, 5000) if smoke else (12, 4, 30_000)
    if smoke:
        long_ms = 30_000
    await ensure_topics(settings, [TOPICS.clip_requests, TOPICS.clip_results,
                                   TOPICS.clip_requests.dlq()])  # fmt: skip
    timeout_s = 120.0 if smoke else 600.0
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-clipmem-") as tmp:
        clipper = procs.start(
            "services.clipper", settings, Path(tmp), name="clipper",
            web_port_var="CLIPPER_WEB_PORT",
            env={"CLIPPER_CONCURRENCY": "4", "LOG_LEVEL": "WARNING", "TMPDIR": tmp},
        )  # fmt: skip
        with procs.stopping([clipper]):
            await procs.wait_ready(clipper.url("/readyz"), [clipper])
            fresh = procs.status_kb(clipper.pid, "VmRSS") or 0
            warm = requests(episode, 2000, 2000, 1, 0)
            await cut_all(settings, warm, timeout_s)
            await asyncio.sleep(1.0)
            async with procs.RssSampler(clipper.pid) as rest:
                await asyncio.sleep(2.0)
            idle = median(rest.samples_kb)
            work = requests(episode, short_ms, long_ms, shorts, longs)
            async with procs.RssSampler(clipper.pid) as sampler:
                wall = await cut_all(settings, work, timeout_s)
            hwm = procs.status_kb(clipper.pid, "VmHWM") or 0
    peak = sampler.peak_kb
    growth_mb = (peak - idle) / 1024
    size = path.stat().st_size
    size_text = f"{size / (1 << 30):.2f} GiB" if size >= 1 << 30 else f"{size / 1e6:.1f} MB"
    ctx.log(f"[clip memory] clipper idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB while "
            f"cutting {len(work)} clips from a {size_text} source in {wall:.1f} s")  # fmt: skip
    return Figure(
        GROUP, f"clipper peak RSS over idle, clips from a {size_text} MP3 source",
        round(growth_mb, 1), "MB",
        baseline_name="clipper idle RSS (after a warm-up clip)", baseline=round(idle / 1024, 1),
        target=f"<= {TARGET_MB:g} MB over idle", met=growth_mb <= TARGET_MB,
        note=f"{shorts} clips of {short_ms / 1000:g} s and {longs} of {long_ms / 1000:g} s, "
             f"4 at a time, in {wall:.1f} s; peak {peak / 1024:.0f} MB sampled every 20 ms "
             f"({len(sampler.samples_kb)} samples), VmHWM since start {hwm / 1024:.0f} MB, "
             f"{fresh / 1024:.0f} MB when first ready; 1 run",
    )  # fmt: skip
