"""Merger memory: how far a merger process grows while it muxes a soundtrack onto a 1 GB
video (picture copied), over its own idle size.

The merger runs as its own process (``python -m services.merger``, configured through
the environment like production). It first does one small warm-up mux, so its idle size
includes the merge path's imports and clients; then its resident size (``VmRSS`` from
``/proc``) is sampled every 20 ms for 2 s at rest, and again while the 1 GB mux runs,
until ``merge.completed`` is on the results topic. The ffmpeg child's own peak is
reported beside it: it is a separate process, with its own (flat, copy-bound) memory.

The source is made with ffmpeg lavfi (``testsrc2`` 1280x720 at 30 fps, lossless x264 so
it is large, a tone) and looped by stream copy up to 1 GiB; the soundtrack is a tone plus
pink noise as long as the video. Both are cached beside the other inputs.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import procs
from bench.figures import BenchContext, Figure, median
from schemas import TOPICS, decode_event, encode_event
from schemas.merge import MergeCompleted, MergeFailed, MergeParams, MergeRequested
from services.common.codec import event_headers
from services.common.kafka import ensure_topics
from services.common.media_store import MediaStore
from services.common.settings import Settings

GROUP = "memory"
RECIPE = "v1"
TARGET_MB = 100.0
FULL_BYTES = 1 << 30
SMOKE_BYTES = 4 << 20


@dataclass(frozen=True)
class Source:
    video: Path
    soundtrack: Path
    duration_s: float


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def _probe_s(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(out.strip())


def ensure_source(directory: Path, min_bytes: int, log: object = print) -> Source:
    """A video of at least ``min_bytes`` and its soundtrack, made once and cached."""
    say = log if callable(log) else print
    height = 720 if min_bytes >= FULL_BYTES else 180
    width = height * 16 // 9
    root = directory / f"memory-{min_bytes}-{height}p-{RECIPE}"
    video, soundtrack = root / "video.mp4", root / "soundtrack.m4a"
    if video.is_file() and soundtrack.is_file():
        say(f"[memory] source cached: {video} ({video.stat().st_size / 1e6:.0f} MB)")
        return Source(video, soundtrack, _probe_s(video))
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"[memory] making a {min_bytes / 1e6:.0f} MB source in {root} (first run only) ...")
    seed = root / ".seed.mp4"
    _ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30:duration=10",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=10",
             "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", str(seed)])  # fmt: skip
    loops = max(1, math.ceil(min_bytes / seed.stat().st_size))
    part = root / ".video.part.mp4"
    _ffmpeg(["-stream_loop", str(loops - 1), "-i", str(seed), "-c", "copy", str(part)])
    seconds = _probe_s(part)
    track = root / ".soundtrack.part.m4a"
    _ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}",
             "-f", "lavfi",
             "-i", f"anoisesrc=color=pink:amplitude=0.05:sample_rate=44100:duration={seconds}",
             "-filter_complex", "amix=inputs=2", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
             str(track)])  # fmt: skip
    part.rename(video)
    track.rename(soundtrack)
    seed.unlink()
    say(f"[memory] made {video.stat().st_size / 1e6:.0f} MB, {seconds:.0f} s, in "
        f"{time.monotonic() - started:.0f} s")  # fmt: skip
    return Source(video, soundtrack, seconds)


async def merge(settings: Settings, inputs: list[str], output_key: str, timeout_s: float) -> float:
    """Ask for a mux over the topic and wait for its outcome; the wall time in seconds."""
    request = MergeRequested(
        job_id=f"mem-{uuid.uuid4().hex[:12]}", tenant_id="bench", producer="bench",
        operation="mux", inputs=inputs, params=MergeParams(sync_mode="trim"),
        output_key=output_key, step="mux",
    )  # fmt: skip
    results = TOPICS.merge_results.full_name(settings.topic_prefix)
    consumer = AIOKafkaConsumer(results, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest")  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        t0 = time.perf_counter()
        topic = TOPICS.merge_requests
        await producer.send_and_wait(topic.full_name(settings.topic_prefix),
                                     value=encode_event(request), key=topic.key_for(request),
                                     headers=event_headers(request))  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    event = decode_event(r.value) if r.value else None
                    if getattr(event, "job_id", None) != request.job_id:
                        continue
                    if isinstance(event, MergeFailed):
                        raise RuntimeError(f"merge failed: {event.error.code}")
                    if isinstance(event, MergeCompleted):
                        return time.perf_counter() - t0
        raise TimeoutError(f"no merge outcome in {timeout_s:.0f} s")
    finally:
        await consumer.stop()
        await producer.stop()


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / (1 << 30):.2f} GiB" if size >= 1 << 30 else f"{size / 1e6:.0f} MB"


async def idle_kb(pid: int, seconds: float = 2.0) -> float:
    async with procs.RssSampler(pid) as sampler:
        await asyncio.sleep(seconds)
    return median(sampler.samples_kb)


async def run(ctx: BenchContext, *, smoke: bool) -> list[Figure]:
    settings = ctx.settings
    size = SMOKE_BYTES if smoke else FULL_BYTES
    big = await asyncio.to_thread(ensure_source, ctx.cache_dir, size, ctx.log)
    small = await asyncio.to_thread(ensure_source, ctx.cache_dir, SMOKE_BYTES, ctx.log)
    await ensure_topics(settings, [TOPICS.merge_requests, TOPICS.merge_results,
                                   TOPICS.merge_requests.dlq()])  # fmt: skip
    async with MediaStore.from_settings(settings) as media:
        await media.ensure_bucket()
        t0 = time.monotonic()
        for key, path in (
            ("memory/small.mp4", small.video),
            ("memory/small.m4a", small.soundtrack),
            ("memory/big.mp4", big.video),
            ("memory/big.m4a", big.soundtrack),
        ):
            await media.upload_file(key, path)
        ctx.log(f"[memory] uploaded inputs in {time.monotonic() - t0:.0f} s")
    timeout_s = 120.0 if smoke else 900.0
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-memory-") as tmp:
        merger = procs.start(
            "services.merger", settings, Path(tmp), name="merger",
            web_port_var="MERGER_WEB_PORT",
            env={"MERGER_CONCURRENCY": "1", "LOG_LEVEL": "WARNING", "TMPDIR": tmp},
        )  # fmt: skip
        with procs.stopping([merger]):
            await procs.wait_ready(merger.url("/readyz"), [merger])
            warm = await merge(settings, ["memory/small.mp4", "memory/small.m4a"],
                               "memory/out-warm.mp4", timeout_s)  # fmt: skip
            ctx.log(f"[memory] warm-up mux {warm:.1f} s")
            await asyncio.sleep(1.0)
            idle = await idle_kb(merger.pid)
            async with procs.RssSampler(merger.pid) as sampler:
                wall = await merge(settings, ["memory/big.mp4", "memory/big.m4a"],
                                   "memory/out-big.mp4", timeout_s)  # fmt: skip
            hwm = procs.status_kb(merger.pid, "VmHWM")
    peak = sampler.peak_kb
    growth_mb = (peak - idle) / 1024
    ctx.log(f"[memory] merger idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB during a "
            f"{big.video.stat().st_size / 1e6:.0f} MB mux of {wall:.1f} s")  # fmt: skip
    return [
        Figure(
            GROUP, f"merger peak RSS over idle, mux onto a {_size(big.video)} video "
                   "(picture copied)", round(growth_mb, 1), "MB",
            baseline_name="merger idle RSS (after a warm-up mux)", baseline=round(idle / 1024, 1),
            target=f"<= {TARGET_MB:g} MB over idle", met=growth_mb <= TARGET_MB,
            note=f"peak {peak / 1024:.0f} MB sampled every 20 ms ({len(sampler.samples_kb)} "
                 f"samples; VmHWM since start {(hwm or 0) / 1024:.0f} MB); ffmpeg child peak "
                 f"{sampler.child_peak_kb / 1024:.0f} MB (own process); mux of "
                 f"{big.duration_s:.0f} s took {wall:.1f} s; 1 run",
        ),
    ]  # fmt: skip
