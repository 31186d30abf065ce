"""End to end: a 5-scene production job through the real services, submit to COMPLETED.

The submitter, the lifecycle, the audio agent (offline ``local`` provider, generation
cache off so every run renders) and the merger run as their own processes on the local
stack, configured through the environment like production. Each job: five scene videos
(ffmpeg lavfi, cached) joined by stream copy, music scored scene by scene, crossfaded
into a soundtrack and muxed onto the joined video.

Reported, as medians over the measured jobs (one unmeasured job warms the services up):

* the **wall time** from the ``POST /v1/jobs`` to the moment the job's record turned
  ``COMPLETED`` (its ``updated_at``, written with the status). The job is polled every
  100 ms, as an eager front end would: the polls' granularity is not in the figure, but
  their load is (each ``GET /v1/jobs/{id}`` is three MongoDB queries, on the same cores);
* **time inside ffmpeg** (the local provider renders with ffmpeg too): the length of the
  union of every ffmpeg and ffprobe run's interval, and **Tapedeck's own overhead**: the
  wall time minus that. The intervals come from a small wrapper the services are pointed
  at (``FFMPEG_BIN``/``FFPROBE_BIN``), which notes when the real tool started and ended.
  The workers' ``/metrics`` sums (``tapedeck_provider_request_duration_seconds``,
  ``tapedeck_ffmpeg_duration_seconds``), scraped before and after each job, are reported
  beside it, but cannot be subtracted: runs overlap (the merger probes its inputs side by
  side, the video is joined while the audio renders), so they add up to more than the
  time they cover;
* **each stage's share** of the wall time, from the job's stage records (``job_stages``,
  created when the stage starts, updated when it ends);
* the CPU seconds each service burned for the job (``/proc``), which the capacity model
  reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import procs
from bench.figures import BenchContext, Figure, median
from bench.stage_hop import cpu_seconds, stack_pids
from services.common.job_store import STAGES
from services.common.mongo import connect, database
from services.common.settings import Settings

GROUP = "e2e"
TENANT = "bench"
SCENES = 5
RECIPE = "v1"
OVERHEAD_TARGET_S = 1.0
POLL_S = 0.1
# Figures the capacity model reads: one job's CPU, by process.
COST_PREFIX = "CPU per job: "
PROVIDER = "tapedeck_provider_request_duration_seconds_sum"
FFMPEG = "tapedeck_ffmpeg_duration_seconds_sum"
# module, its web-port variable (None: the submitter, on API_PORT)
SERVICES: dict[str, tuple[str, str | None]] = {
    "submitter": ("services.submitter", None),
    "lifecycle": ("services.lifecycle", "LIFECYCLE_WEB_PORT"),
    "audio_agent": ("services.audio_agent", "AUDIO_WEB_PORT"),
    "merger": ("services.merger", "MERGER_WEB_PORT"),
}


def ensure_scenes(directory: Path, seconds: float) -> list[Path]:
    """Five short scene videos of one format (so joining them is a stream copy), cached."""
    root = directory / f"e2e-scenes-{seconds:g}s-{RECIPE}"
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(SCENES):
        path = root / f"scene-{n}.mp4"
        if not path.is_file():
            part = root / f".scene-{n}.part.mp4"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-nostdin", "-y",
                 "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds:g}",
                 "-f", "lavfi", "-i", f"sine=frequency={300 + 100 * n}:duration={seconds:g}",
                 "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25",
                 "-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2", "-shortest",
                 str(part)],
                check=True,
            )  # fmt: skip
            part.rename(path)
        paths.append(path)
    return paths


def spec(keys: list[str], seconds: float, n: int) -> dict[str, Any]:
    return {
        "job_kind": "production",
        "prompt": f"a gentle day at the seaside, warm piano, take {n}",
        "scenes": [
            {"prompt": f"scene {i} of take {n}", "duration_s": seconds, "video": k}
            for i, k in enumerate(keys)
        ],
        "feature": {"audio": True, "audio_tier": "basic"},
        "audio_params": {"kind": "music", "fade_duration": 1.0, "sync_mode": "trim"},
    }


@dataclass
class JobRun:
    wall_s: float
    inside_s: float  # union of the tool runs' intervals within the job
    runs: int  # tool runs during the job
    provider_s: float  # /metrics sums, for reference
    ffmpeg_s: dict[str, float]  # by service
    stages: dict[str, tuple[float, float]]  # name -> (start, end), s after submit
    cpu_s: dict[str, float | None] = field(default_factory=dict)
    stage_tools_s: dict[str, float] = field(default_factory=dict)  # tool time in each span

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.inside_s


WRAPPER = """#!/bin/bash
# Notes when each run of the real tool starts and ends (bench/e2e_job.py).
s=$EPOCHREALTIME
"$BENCH_REAL_TOOL_DIR/{tool}" "$@"
rc=$?
printf '%s %s {tool}\\n' "$s" "$EPOCHREALTIME" >> "$BENCH_TOOL_LOG"
exit $rc
"""


def install_wrappers(bindir: Path) -> dict[str, str]:
    """``ffmpeg`` and ``ffprobe`` wrappers in ``bindir``; the variables that point the
    services at them (the tool's name stays the same, so the metrics' labels do too)."""
    import shutil

    real = shutil.which("ffmpeg")
    if real is None:
        raise RuntimeError("ffmpeg is not on PATH")
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("ffmpeg", "ffprobe"):
        path = bindir / tool
        path.write_text(WRAPPER.replace("{tool}", tool))
        path.chmod(0o755)
    return {
        "FFMPEG_BIN": str(bindir / "ffmpeg"),
        "FFPROBE_BIN": str(bindir / "ffprobe"),
        "BENCH_REAL_TOOL_DIR": str(Path(real).parent),
        "BENCH_TOOL_LOG": str(bindir / "runs.log"),
    }


def tool_intervals(log: Path) -> list[tuple[float, float]]:
    out = []
    with contextlib.suppress(OSError):
        for line in log.read_text().splitlines():
            parts = line.replace(",", ".").split()
            with contextlib.suppress(ValueError, IndexError):
                out.append((float(parts[0]), float(parts[1])))
    return out


def covered_s(intervals: list[tuple[float, float]], lo: float, hi: float) -> tuple[float, int]:
    """Length of the union of ``intervals`` within ``[lo, hi]``, and how many touch it."""
    clipped = sorted((max(s, lo), min(e, hi)) for s, e in intervals if e > lo and s < hi)
    total, end = 0.0, lo
    for s, e in clipped:
        if e > end:
            total += e - max(s, end)
            end = e
    return total, len(clipped)


def ended_after(job: Mapping[str, Any], t0_wall: float, seen_s: float) -> float:
    """Seconds from the submission (``t0_wall``, this machine's clock, as the servers')
    to the job's last update, the one that ended it; ``seen_s`` (when a poll saw it) if
    the record has no usable time."""
    try:
        at = datetime.fromisoformat(str(job["updated_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return seen_s
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # MongoDB keeps UTC
    ended = at.timestamp() - t0_wall
    return ended if 0 < ended <= seen_s else seen_s


def _seconds(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    return value.timestamp() if isinstance(value, datetime) else None


async def stage_spans(
    settings: Settings, job_id: str, t0_wall: float
) -> dict[str, tuple[float, float]]:
    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        docs = [d async for d in database(mongo, settings)[STAGES].find({"job_id": job_id})]
    finally:
        await mongo.close()
    spans = {}
    for d in docs:
        start, end = _seconds(d, "created_at"), _seconds(d, "updated_at")
        if start is not None and end is not None:
            spans[str(d["stage"])] = (round(start - t0_wall, 3), round(end - t0_wall, 3))
    return dict(sorted(spans.items(), key=lambda kv: kv[1]))


class Stack:
    """The four services as processes, and what the bench reads from them."""

    def __init__(self, settings: Settings, logdir: Path, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.tool_log = Path(env["BENCH_TOOL_LOG"])
        self.api_port = procs.free_port()
        self.services: dict[str, procs.Service] = {}
        for name, (module, port_var) in SERVICES.items():
            extra = {**env, "API_PORT": str(self.api_port)}
            self.services[name] = procs.start(module, settings, logdir, name=name,
                                              web_port_var=port_var, env=extra)  # fmt: skip

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def ready(self) -> None:
        every = list(self.services.values())
        await procs.wait_ready(f"{self.api}/readyz", every)
        for s in every:
            if s.web_port is not None:
                await procs.wait_ready(s.url("/readyz"), every)

    async def tool_seconds(self, client: httpx.AsyncClient) -> tuple[float, dict[str, float]]:
        audio = await procs.scrape(client, self.services["audio_agent"])
        merger = await procs.scrape(client, self.services["merger"])
        ffmpeg = {"audio_agent": procs.metric_sum(audio, FFMPEG),
                  "merger": procs.metric_sum(merger, FFMPEG)}  # fmt: skip
        return procs.metric_sum(audio, PROVIDER), ffmpeg

    def cpu(self) -> dict[str, float | None]:
        own = {name: cpu_seconds(s.pid) for name, s in self.services.items()}
        stack = {name: cpu_seconds(pid) if pid else None for name, pid in stack_pids().items()}
        return {**own, **stack}


def api_key(settings: Settings) -> str:
    import json
    import os

    cli = Path(sys.executable).parent / "tapedeck"
    done = subprocess.run(
        [str(cli), "keys", "create", "--tenant", TENANT, "--json"],
        env={**os.environ, **procs.settings_env(settings)}, cwd=procs.ROOT,
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"tapedeck keys create: {done.stderr.strip()[-300:]}")
    return str(json.loads(done.stdout)["key"])


async def one_job(
    stack: Stack, client: httpx.AsyncClient, keys: list[str], seconds: float, n: int,
    timeout_s: float,
) -> JobRun:  # fmt: skip
    metrics_client = httpx.AsyncClient(timeout=5)
    async with metrics_client:
        provider0, ffmpeg0 = await stack.tool_seconds(metrics_client)
        cpu0 = stack.cpu()
        t0_wall, t0 = time.time(), time.perf_counter()
        resp = await client.post("/v1/jobs", json=spec(keys, seconds, n))
        resp.raise_for_status()
        job_id = resp.json()["job_id"]
        deadline = time.monotonic() + timeout_s
        while True:
            job = (await client.get(f"/v1/jobs/{job_id}")).json()
            if job.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not done in {timeout_s:.0f} s: {job}")
            await asyncio.sleep(POLL_S)
        wall = ended_after(job, t0_wall, time.perf_counter() - t0)
        if job["status"] != "COMPLETED" or job.get("audio_status") != "COMPLETED":
            raise RuntimeError(f"job ended {job['status']} (audio {job.get('audio_status')}): "
                               f"{str(job.get('error'))[:200]}")  # fmt: skip
        t1_wall = t0_wall + wall
        # A worker's last observation lands just before its outcome: give it a moment.
        await asyncio.sleep(0.2)
        provider1, ffmpeg1 = await stack.tool_seconds(metrics_client)
        cpu1 = stack.cpu()
    spans = await stage_spans(stack.settings, job_id, t0_wall)
    intervals = tool_intervals(stack.tool_log)
    inside, count = covered_s(intervals, t0_wall, t1_wall)
    in_stage = {name: round(covered_s(intervals, t0_wall + a, t0_wall + b)[0], 3)
                for name, (a, b) in spans.items()}  # fmt: skip
    cpu: dict[str, float | None] = {}
    for k, v in cpu1.items():
        before = cpu0.get(k)
        cpu[k] = round(v - before, 3) if v is not None and before is not None else None
    return JobRun(
        wall_s=wall, inside_s=inside, runs=count, provider_s=provider1 - provider0,
        ffmpeg_s={k: ffmpeg1[k] - ffmpeg0[k] for k in ffmpeg1}, stages=spans, cpu_s=cpu,
        stage_tools_s=in_stage,
    )  # fmt: skip


def describe(run: JobRun) -> str:
    stages = ", ".join(f"{k} {s:.2f}-{e:.2f}" for k, (s, e) in run.stages.items())
    return (f"wall {run.wall_s:.2f} s, inside ffmpeg {run.inside_s:.2f} s ({run.runs} runs; "
            f"metric sums: provider {run.provider_s:.2f}, ffmpeg audio agent "
            f"{run.ffmpeg_s.get('audio_agent', 0):.2f}, merger "
            f"{run.ffmpeg_s.get('merger', 0):.2f}), overhead {run.overhead_s:.2f} s; "
            f"stages: {stages}")  # fmt: skip


async def run(ctx: BenchContext, *, smoke: bool) -> list[Figure]:
    settings = ctx.settings
    seconds = 1.0 if smoke else 4.0
    reps = 1 if smoke else 3
    timeout_s = 120.0 if smoke else 300.0
    paths = await asyncio.to_thread(ensure_scenes, ctx.cache_dir, seconds)
    from services.common.media_store import MediaStore

    keys = [f"ingest/{TENANT}/e2e-{p.name}" for p in paths]
    async with MediaStore.from_settings(settings) as media:
        await media.ensure_bucket()
        for key, path in zip(keys, paths, strict=True):
            await media.upload_file(key, path)
    key = await asyncio.to_thread(api_key, settings)
    runs: list[JobRun] = []
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-e2e-") as tmp:
        env = {"AUDIO_CACHE_ENABLED": "false", "LOG_LEVEL": "WARNING", "TMPDIR": tmp,
               "AUDIO_TIER_MAP": "local", **install_wrappers(Path(tmp) / "bin")}  # fmt: skip
        stack = Stack(settings, Path(tmp) / "logs", env)
        with procs.stopping(list(stack.services.values())):
            await stack.ready()
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=stack.api, headers=headers,
                                         timeout=30) as client:  # fmt: skip
                # One unmeasured job first (not in a smoke run): the consumers' first
                # fetches, the tools' first start, the clients' connections.
                warm = 0 if smoke else 1
                for n in range(warm + reps):
                    job = await one_job(stack, client, keys, seconds, n, timeout_s)
                    label = "warm-up" if n < warm else f"job {n - warm + 1}/{reps}"
                    ctx.log(f"[e2e] {label}: {describe(job)}")
                    if n >= warm:
                        runs.append(job)
    return figures(runs)


def figures(runs: list[JobRun]) -> list[Figure]:
    wall = median(r.wall_s for r in runs)
    inside = median(r.inside_s for r in runs)
    overhead = median(r.overhead_s for r in runs)
    out = [
        Figure(
            GROUP, f"{SCENES}-scene production job, submit to COMPLETED", round(wall, 2), "s",
            baseline_name="time inside ffmpeg (union of runs)", baseline=round(inside, 2),
            ratio=round(wall / inside, 2) if inside else None,
            note=f"ratio = wall / inside; local provider (renders with ffmpeg), music only; "
                 f"{len(runs)} job(s); {median(r.runs for r in runs):.0f} tool "
                 f"runs a job; /metrics sums (overlapping runs): provider "
                 f"{median(r.provider_s for r in runs):.2f} s, ffmpeg audio agent "
                 f"{median(r.ffmpeg_s.get('audio_agent', 0) for r in runs):.2f} s, merger "
                 f"{median(r.ffmpeg_s.get('merger', 0) for r in runs):.2f} s",
        ),
        Figure(
            GROUP, "Tapedeck overhead (wall - time inside providers and ffmpeg)",
            round(overhead, 2), "s", target=f"< {OVERHEAD_TARGET_S:g} s",
            met=overhead < OVERHEAD_TARGET_S,
            note="the local provider's own Python around its ffmpeg run counts as overhead, "
                 "and so do the Kafka hops and MongoDB writes between stages",
        ),
    ]  # fmt: skip
    names = list(runs[0].stages) if runs else []
    for name in names:
        spans = [r.stages[name][1] - r.stages[name][0] for r in runs if name in r.stages]
        share = median((r.stages[name][1] - r.stages[name][0]) / r.wall_s * 100
                       for r in runs if name in r.stages)  # fmt: skip
        starts = median(r.stages[name][0] for r in runs if name in r.stages)
        tools = median(r.stage_tools_s.get(name, 0.0) for r in runs if name in r.stages)
        out.append(Figure(GROUP, f"stage share: {name}", round(share, 1), "% of wall",
                          note=f"{median(spans):.2f} s, starts {starts:.2f} s after submit; "
                               f"ffmpeg runs cover {tools:.2f} s of it"))  # fmt: skip
    cpu_keys = [k for k in (*SERVICES, "kafka", "mongo", "s3") if any(k in r.cpu_s for r in runs)]
    for k in cpu_keys:
        value = median(v for r in runs if (v := r.cpu_s.get(k)) is not None)
        if value == value:  # not NaN: the process was there to measure
            out.append(
                Figure(
                    GROUP,
                    f"{COST_PREFIX}{k}",
                    round(value, 3),
                    "CPU s",
                    note="median over jobs; the process and its children, /proc",
                )
            )
    return out
