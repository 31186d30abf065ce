"""Merge benchmark: stream copy against re-encoding, on the merger's own paths.

*Concat*: 10 compatible 30 s 720p clips joined by the merger (``MergeHandler`` with the
real adapters: HEAD and ffprobe per input, downloads, the concat demuxer with stream copy,
upload) against the same clips joined by re-encoding (the merger's normalising recipe:
one ffmpeg run over presigned URLs, libx264 + AAC, then upload).

*Mux*: a soundtrack put onto the 5-minute 720p video made of those clips, by the merger
(video stream copied, audio fitted and encoded as AAC) against the same command with the
video re-encoded.

Each path reports its median wall time, how many times real time that is (output length
/ wall time) and the peak resident memory of its ffmpeg child (its VmHWM, sampled from
/proc every 25 ms), and the re-encode/copy ratios. Inputs are made with ffmpeg lavfi and
cached under ``$STACK_DIR/bench``; each run uses its own S3 key prefix, removed at the end.

    python -m bench.merge_bench [--clips 10] [--clip-s 30] [--height 720] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.sources import cache_dir
from schemas.merge import MergeCompleted, MergeParams, MergeRequested
from schemas.names import Stage
from services.common.context import StageContext
from services.common.media_store import MediaStore
from services.common.settings import Settings
from services.merger import audio_graph, recipes
from services.merger.compat import Canvas
from services.merger.formats import VIDEO_ENCODER_ARGS, VIDEO_OUTPUTS
from services.merger.handler import MergeConfig, MergeHandler
from services.merger.sources import Limits
from services.merger.timing import plan_sync
from services.merger.tools import FFmpegTools, pick_video_encoder

RECIPE = "v1"
FPS = 30
SOUNDTRACK_SHARE = 0.95  # the soundtrack is a little shorter: the mux stretches it


def log(msg: str) -> None:
    print(msg, flush=True)


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    clips: list[Path]
    video: Path  # the clips joined: the mux's video
    soundtrack: Path
    clip_s: float
    width: int
    height: int


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                   check=True, stdin=subprocess.DEVNULL)  # fmt: skip


def ensure_inputs(directory: Path, clips: int, clip_s: float, height: int) -> Inputs:
    """Made once and cached: one encode of the whole length, cut into clips at keyframes
    (so every clip shares the encoder's setup and can be joined by stream copy)."""
    width = round(height * 16 / 9 / 2) * 2
    total = clips * clip_s
    tag = f"{clips}x{clip_s:g}s-{height}p-{RECIPE}"
    folder = directory / f"merge-{tag}"
    video, soundtrack = folder / "video.mp4", folder / "soundtrack.m4a"
    parts = [folder / f"clip-{n:03d}.mp4" for n in range(clips)]
    if all(p.is_file() for p in [video, soundtrack, *parts]):
        log(f"  inputs cached in {folder}")
        return Inputs(parts, video, soundtrack, clip_s, width, height)
    log(f"  making inputs in {folder} (first run only) ...")
    started = time.monotonic()
    scratch = directory / f".merge-{tag}.{os.getpid()}.part"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        whole = scratch / "video.mp4"
        _ffmpeg([
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={FPS}:duration={total}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={total}",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p",
            "-force_key_frames", f"expr:gte(t,n_forced*{clip_s})", "-g", str(2 * FPS),
            "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", str(whole),
        ])  # fmt: skip
        _ffmpeg(["-i", str(whole), "-c", "copy", "-map", "0", "-f", "segment",
                 "-segment_time", f"{clip_s}", "-reset_timestamps", "1",
                 str(scratch / "clip-%03d.mp4")])  # fmt: skip
        music_s = total * SOUNDTRACK_SHARE
        _ffmpeg([
            "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:duration={music_s}",
            "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.05:duration={music_s}:seed=3",
            "-filter_complex", "amix=inputs=2", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            str(scratch / "soundtrack.m4a"),
        ])  # fmt: skip
        made = sorted(scratch.glob("clip-*.mp4"))
        if len(made) != clips:
            raise RuntimeError(f"cutting made {len(made)} clips, not {clips}")
        if folder.exists():
            subprocess.run(["rm", "-rf", str(folder)], check=True)
        scratch.rename(folder)
    except BaseException:
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
        raise
    log(f"  inputs made in {time.monotonic() - started:.0f} s")
    return Inputs(parts, video, soundtrack, clip_s, width, height)


# -- memory of the ffmpeg children ------------------------------------------------------------


class ChildMemory:
    """Peak resident memory (VmHWM, kB) of every ffmpeg child of this process, sampled
    from /proc. VmHWM is the child's own high-water mark, so a late sample still sees the
    peak; only growth in the last interval before it exits can be missed. Also this
    process's own resident memory (VmRSS) at each sample: what the merger's Python side
    holds while a merge runs."""

    def __init__(self, interval_s: float = 0.025) -> None:
        self._interval_s = interval_s
        self._peaks: dict[int, int] = {}
        self._own_rss: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ChildMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self._interval_s):
            own = _status(me).get("VmRSS", "0 kB")
            for pid, kb in _ffmpeg_children(me):
                with self._lock:
                    self._peaks[pid] = max(kb, self._peaks.get(pid, 0))
            with self._lock:
                self._own_rss.append(int(own.split()[0]))

    @contextlib.contextmanager
    def window(self) -> Iterator[dict[str, int]]:
        """The largest ffmpeg peak among the children that ran inside the block, and the
        largest resident size of this process meanwhile."""
        with self._lock:
            before, first = set(self._peaks), len(self._own_rss)
        found: dict[str, int] = {}
        try:
            yield found
        finally:
            time.sleep(2 * self._interval_s)
            with self._lock:
                new = [kb for pid, kb in self._peaks.items() if pid not in before]
                own = self._own_rss[first:]
            found["peak_kb"] = max(new, default=0)
            found["own_kb"] = max(own, default=0)


def _status(pid: int | str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: v.strip() for k, v in (ln.split(":", 1) for ln in text.splitlines() if ":" in ln)}


def _ffmpeg_children(parent: int) -> list[tuple[int, int]]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _status(entry)
        if fields.get("Name") != "ffmpeg":
            continue
        if int(fields.get("PPid", "0")) != parent or "VmHWM" not in fields:
            continue
        out.append((int(entry), int(fields["VmHWM"].split()[0])))
    return out


# -- the paths --------------------------------------------------------------------------------


@dataclass
class Sample:
    wall_s: float
    output_s: float
    peak_kb: int  # the ffmpeg child's
    size_bytes: int
    own_kb: int = 0  # this process's resident size, at most, meanwhile


@dataclass
class Case:
    name: str
    ours: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)
    # The copy path's own floor, where it has one: the mux's soundtrack work alone.
    floor: list[Sample] = field(default_factory=list)


class _NoCheckpoints:
    async def load(self, stage: str, event_id: str, step: str) -> None:
        return None

    async def save(self, stage: str, event_id: str, step: str, result: object) -> None:
        return None


async def _nothing(_: float) -> None:
    return None


@dataclass
class Bench:
    media: MediaStore
    tools: FFmpegTools
    handler: MergeHandler
    encoder: str
    memory: ChildMemory
    inputs: Inputs
    clip_keys: list[str]
    clip_ms: list[int]
    video_ms: int
    music_ms: int

    async def _timed(self, work: Callable[[], Awaitable[tuple[float, int]]]) -> Sample:
        with self.memory.window() as peak:
            t0 = time.perf_counter()
            output_s, size = await work()
            wall = time.perf_counter() - t0
        return Sample(wall, output_s, peak["peak_kb"], size, peak["own_kb"])

    async def _merge(self, operation: str, inputs: list[str], out: str, **params: Any) -> Sample:
        event = MergeRequested(job_id=uuid.uuid4().hex, tenant_id="bench", producer="bench",
                               operation=operation, inputs=inputs,  # type: ignore[arg-type]
                               params=MergeParams(**params), output_key=out)  # fmt: skip

        async def work() -> tuple[float, int]:
            ctx = StageContext(Stage.MERGE, event, 1, time.monotonic() + 3600, _NoCheckpoints())
            (done,) = await self.handler(event, ctx)
            assert isinstance(done, MergeCompleted) and done.copied
            return done.duration_ms / 1000, done.size_bytes

        return await self._timed(work)

    async def concat_copy(self) -> Sample:
        return await self._merge("concat_video", self.clip_keys, "out/concat-copy.mp4")

    async def mux_copy(self) -> Sample:
        return await self._merge("mux", ["video.mp4"], "out/mux-copy.mp4",
                                 audio_key="soundtrack.m4a", sync_mode="stretch")  # fmt: skip

    async def _encode(self, args_for: Callable[[list[str], Path], list[str]], keys: list[str],
                      key: str, output_s: float) -> Sample:  # fmt: skip
        async def work() -> tuple[float, int]:
            urls = [await self.media.presign_get(k, 3600) for k in keys]
            async with self.tools.workdir() as tmp:
                out = tmp / "merged.mp4"
                await self.tools.run(args_for(urls, out), 3600, _nothing)
                size = await self.media.upload_file(key, out, "video/mp4")
            return output_s, size

        return await self._timed(work)

    async def concat_encode(self) -> Sample:
        canvas = Canvas(self.inputs.width, self.inputs.height, Fraction(FPS))
        return await self._encode(
            lambda urls, out: recipes.concat_encode(
                urls, self.clip_ms, [True] * len(urls), canvas, VIDEO_ENCODER_ARGS[self.encoder],
                out, VIDEO_OUTPUTS["mp4"],
            ),
            self.clip_keys, "out/concat-encode.mp4", sum(self.clip_ms) / 1000,
        )  # fmt: skip

    async def mux_encode(self) -> Sample:
        plan = plan_sync(self.video_ms, self.music_ms, "stretch")
        chains, label = audio_graph.soundtrack(1, None, plan, "stereo")

        def args(urls: list[str], out: Path) -> list[str]:
            argv = recipes.mux(urls[0], urls[1:], chains, label, out, VIDEO_OUTPUTS["mp4"])
            at = argv.index("-c:v")
            return [*argv[:at], *VIDEO_ENCODER_ARGS[self.encoder], *argv[at + 2 :]]

        return await self._encode(args, ["video.mp4", "soundtrack.m4a"], "out/mux-encode.mp4",
                                  self.video_ms / 1000)  # fmt: skip

    async def mux_audio(self) -> Sample:
        """The merger's mux command without the picture: the same inputs read (the video
        too, as the mux demuxes it), the same graph and AAC encode. What is left of the
        copy path when copying the picture costs nothing."""
        plan = plan_sync(self.video_ms, self.music_ms, "stretch")
        chains, label = audio_graph.soundtrack(1, None, plan, "stereo")

        def args(urls: list[str], out: Path) -> list[str]:
            argv = recipes.mux(urls[0], urls[1:], chains, label, out, VIDEO_OUTPUTS["mp4"])
            at = argv.index("0:v:0") - 1
            argv = [*argv[:at], *argv[at + 2 :]]
            at = argv.index("-c:v")
            return [*argv[:at], "-vn", *argv[at + 2 :]]

        return await self._encode(args, ["video.mp4", "soundtrack.m4a"], "out/mux-audio.mp4",
                                  self.video_ms / 1000)  # fmt: skip


# -- the run ----------------------------------------------------------------------------------


def _check_s3(settings: Settings) -> None:
    hostport = (settings.s3_endpoint or "").split("://")[-1].split("/")[0]
    if ":" not in hostport:
        return
    host, port = hostport.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(1.0)
        if s.connect_ex((host, int(port))) != 0:
            raise SystemExit(f"S3 does not answer on {hostport}: run `make up` first")


@contextlib.asynccontextmanager
async def isolated(base: Settings) -> AsyncIterator[MediaStore]:
    """This run's own S3 key prefix, emptied afterwards whatever happens."""
    settings = base.model_copy(update={"s3_key_prefix": f"bench/merge-{uuid.uuid4().hex[:12]}/"})
    async with MediaStore.from_settings(settings) as media:
        try:
            await media.ensure_bucket()
            yield media
        finally:
            try:
                removed = await asyncio.shield(media.delete_prefix(""))
                log(f"cleanup: removed {removed} objects under {settings.s3_key_prefix}")
            except Exception as exc:
                log(f"cleanup: could not empty {settings.s3_key_prefix}: {exc!r}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    _check_s3(base)
    load_start = os.getloadavg()[0]
    log(f"inputs (cached in {args.cache_dir}):")
    inputs = await asyncio.to_thread(
        ensure_inputs, args.cache_dir, args.clips, args.clip_s, args.height
    )
    tools = FFmpegTools(base.ffmpeg_bin, base.ffprobe_bin)
    encoder = await pick_video_encoder(tools)
    clip_ms = [(await tools.probe(p)).video_ms or 0 for p in inputs.clips]
    video_ms = (await tools.probe(inputs.video)).video_ms or 0
    music_ms = (await tools.probe(inputs.soundtrack)).audio_ms or 0
    cases = [Case("concat"), Case("mux")]
    async with isolated(base) as media:
        keys = [f"clips/{p.name}" for p in inputs.clips]
        uploads = {**dict(zip(keys, inputs.clips, strict=True)),
                   "video.mp4": inputs.video, "soundtrack.m4a": inputs.soundtrack}  # fmt: skip
        for key, file in uploads.items():  # one at a time: the process stays small
            await media.upload_file(key, file)
        handler = MergeHandler(media=media, tools=tools, config=MergeConfig(
            Limits(max(args.clips, 2), 24 * 3600 * 1000), video_encoder=encoder))  # fmt: skip
        with ChildMemory() as memory:
            bench = Bench(media, tools, handler, encoder, memory, inputs, keys, clip_ms,
                          video_ms, music_ms)  # fmt: skip
            # Warm-up, not measured: connections, page cache, the tools' first start.
            await bench.concat_copy()
            await bench.mux_copy()
            paths: list[tuple[Case, str, Callable[[], Awaitable[Sample]]]] = [
                (cases[0], "copy", bench.concat_copy), (cases[0], "encode", bench.concat_encode),
                (cases[1], "copy", bench.mux_copy), (cases[1], "encode", bench.mux_encode),
                (cases[1], "floor", bench.mux_audio),
            ]  # fmt: skip
            # Interleaved, so other work on the machine weighs on both paths alike.
            for i in range(max(args.reps, args.baseline_reps)):
                for case, path, measure in paths:
                    reps = args.baseline_reps if path == "encode" else args.reps
                    if i >= reps:
                        continue
                    s = await measure()
                    {"copy": case.ours, "encode": case.baseline, "floor": case.floor}[path].append(
                        s
                    )
                    log(f"[{case.name:6}] {path:6} {i + 1}/{reps}: {s.wall_s:7.2f} s, "
                        f"{s.output_s / s.wall_s:6.1f}x real time, ffmpeg peak "
                        f"{s.peak_kb / 1024:6.1f} MB")  # fmt: skip
    result = summarize(cases, args, encoder, video_ms)
    result["loadavg_1m"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    result["bench_process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    result["input_bytes"] = sum(p.stat().st_size for p in inputs.clips)
    return result


# -- report -----------------------------------------------------------------------------------


def _median(samples: list[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _path(samples: list[Sample]) -> dict[str, Any]:
    wall = _median(samples, "wall_s")
    output = _median(samples, "output_s")
    return {
        "median_wall_s": round(wall, 3),
        "times_real_time": round(output / wall, 1) if wall else None,
        "median_ffmpeg_peak_mb": round(_median(samples, "peak_kb") / 1024, 1),
        "max_process_rss_mb": round(max(s.own_kb for s in samples) / 1024, 1),
        "output_s": round(output, 3),
        "output_bytes": round(_median(samples, "size_bytes")),
        "samples": [asdict(s) for s in samples],
    }


def summarize(
    cases: list[Case], args: argparse.Namespace, encoder: str, video_ms: int
) -> dict[str, Any]:
    out = []
    for case in cases:
        ours, base = _path(case.ours), _path(case.baseline)
        row: dict[str, Any] = {
            "case": case.name, "copy": ours, "encode": base,
            "encode_over_copy": {
                "wall": ratio(base["median_wall_s"], ours["median_wall_s"]),
                "ffmpeg_peak_memory": ratio(base["median_ffmpeg_peak_mb"],
                                            ours["median_ffmpeg_peak_mb"]),
            },
        }  # fmt: skip
        if case.floor:
            floor = _path(case.floor)
            # The most the copy path could be worth against this re-encode: the floor's
            # work cannot be copied.
            row["floor"] = floor
            row["encode_over_floor"] = ratio(base["median_wall_s"], floor["median_wall_s"])
        out.append(row)
    return {
        "benchmark": "merge",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "clips": args.clips, "clip_s": args.clip_s, "height": args.height,
        "video_s": round(video_ms / 1000, 3), "reps": args.reps,
        "baseline_reps": args.baseline_reps, "video_encoder": encoder,
        "cpus": len(os.sched_getaffinity(0)), "cases": out,
    }  # fmt: skip


def without_samples(result: dict[str, Any]) -> dict[str, Any]:
    cases = [{**c, **{p: {k: v for k, v in c[p].items() if k != "samples"}
                      for p in ("copy", "encode", "floor") if p in c}}
             for c in result["cases"]]  # fmt: skip
    return {**result, "cases": cases}


def render(result: dict[str, Any]) -> str:
    label = {
        "concat": f"concat {result['clips']} x {result['clip_s']:g} s, {result['height']}p",
        "mux": f"mux onto {result['video_s']:g} s {result['height']}p",
    }
    lines = [
        f"median of {result['reps']} (copy) / {result['baseline_reps']} (re-encode, "
        f"{result['video_encoder']}) runs, {result['cpus']} CPUs, load average "
        f"{result['loadavg_1m']['start']:.2f} at the start",
        "",
        "| case | path | wall | x real time | ffmpeg peak RSS | Python RSS | output |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in result["cases"]:
        for path, name in (("copy", "stream copy (merger)"), ("encode", "re-encode"),
                           ("floor", "its soundtrack alone")):  # fmt: skip
            if path not in c:
                continue
            p = c[path]
            lines.append(
                f"| {label[c['case']]} | {name} | {p['median_wall_s']:.2f} s "
                f"| {p['times_real_time']:.1f}x | {p['median_ffmpeg_peak_mb']:.1f} MB "
                f"| {p['max_process_rss_mb']:.0f} MB | {p['output_bytes'] / 1e6:.1f} MB |"
            )
    lines += ["", "| case | re-encode / copy: wall | re-encode / copy: ffmpeg peak memory |",
              "| --- | ---: | ---: |"]  # fmt: skip
    for c in result["cases"]:
        r = c["encode_over_copy"]
        lines.append(f"| {label[c['case']]} | {r['wall']}x | {r['ffmpeg_peak_memory']}x |")
    for c in result["cases"]:
        if "floor" in c:
            lines.append(f"\n{label[c['case']]}: re-encode / soundtrack alone "
                         f"{c['encode_over_floor']}x (the most a copy of the picture can gain "
                         "while the soundtrack is encoded)")  # fmt: skip
    lines += ["", f"bench process peak RSS over the whole run: "
              f"{result['bench_process_peak_rss_mb']:.0f} MB (clips: "
              f"{result['input_bytes'] / 1e6:.0f} MB)"]  # fmt: skip
    return "\n".join(lines)


# -- CLI --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.merge_bench", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--clips", type=int, default=10, help="clips to concatenate (default 10)")
    p.add_argument("--clip-s", type=float, default=30.0, help="clip length in s (default 30)")
    p.add_argument("--height", type=int, default=720, help="picture height (default 720)")
    p.add_argument("--reps", type=int, default=3, help="measured copy runs per case (default 3)")
    p.add_argument(
        "--baseline-reps",
        type=int,
        default=1,
        help="measured re-encode runs per case (default 1: ~3 min each at 720p)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where inputs are cached (default: $STACK_DIR/bench)",
    )
    p.add_argument("--out", type=Path, default=None,
                   help="JSON results file (default: <cache dir>/merge_bench.json)")  # fmt: skip
    args = p.parse_args(argv)
    if args.clips < 2 or args.clip_s <= 0 or args.height < 16:
        p.error("need at least 2 clips of a positive length and a height of 16 or more")
    if args.reps < 1 or args.baseline_reps < 1:
        p.error("--reps and --baseline-reps must be >= 1")
    args.cache_dir = args.cache_dir or cache_dir()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        result = asyncio.run(run(args))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    result["wall_s"] = round(time.monotonic() - started, 1)
    out: Path = args.out or args.cache_dir / "merge_bench.json"
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
