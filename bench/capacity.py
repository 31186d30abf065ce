"""Capacity beyond one machine, from what one unit of work costs here.

Measured (``run``, the suite's last module): two clipper worker processes against one
on the same backlog of uncached clips, each on fresh topics, for the **scaling ratio**
that checks the per-worker figures; and what one uncached clip costs in CPU, by process
(the clippers, the Kafka broker, the MongoDB server, the S3 server; from ``/proc``).

Modelled (``model``): from those costs and the ones the other modules measured in the
same run (one production job's CPU by process, ``bench/e2e_job.py``; a cached clip's
cost from the API benchmark's throughput), the CPU cores, worker processes and
partitions each stage needs for a target load, and which shared server runs out first.

    python -m bench.capacity [--results bench/results/latest.json] [--clips-per-s 1000]
        [--hit-ratio 0.8] [--jobs-per-day 100000] [--node-cores 8] ...

prints the model for other targets from a finished run's results, without measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import procs
from bench.figures import BenchContext, Figure, median
from bench.machine import cores
from bench.sources import ensure_source
from bench.stage_hop import cpu_seconds, stack_pids
from schemas import TOPICS, decode_event, encode_event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from services.common.codec import event_headers
from services.common.kafka import ensure_topics
from services.common.settings import Settings

GROUP = "capacity"
CLIP_COST = "CPU per uncached clip: "
JOB_COST = "CPU per job: "  # bench/e2e_job.py
TENANT = "bench"
# Start of each request's range is this far from the last, so every request is a miss.
STEP_MS = 1013

# stage -> (topic it consumes, registry partitions, cores one worker process can use).
# A worker is one Python event loop (about one core); the audio agent and the merger spend
# most of their CPU in ffmpeg children, of which they run several at once.
STAGES: dict[str, tuple[str, int, float]] = {
    "submitter": ("(HTTP)", 0, 1.0),
    "clipper": (TOPICS.clip_requests.name, TOPICS.clip_requests.partitions, 1.0),
    "lifecycle": (TOPICS.jobs_requests.name, TOPICS.jobs_requests.partitions, 1.0),
    "audio_agent": (TOPICS.audio_jobs.name, TOPICS.audio_jobs.partitions, 2.0),
    "merger": (TOPICS.merge_requests.name, TOPICS.merge_requests.partitions, 2.0),
}
SERVERS = {"kafka": "Kafka broker", "mongo": "MongoDB server", "s3": "S3 server"}


# -- the model ------------------------------------------------------------------------------


@dataclass
class Costs:
    """CPU seconds per unit of work, by process."""

    clip_miss: dict[str, float] = field(default_factory=dict)
    clip_hit: dict[str, float] = field(default_factory=dict)
    job: dict[str, float] = field(default_factory=dict)
    cores_here: int = 2
    scenes_per_job: int = 5


@dataclass(frozen=True)
class Target:
    clips_per_s: float = 1000.0
    hit_ratio: float = 0.8
    jobs_per_day: float = 100_000.0
    node_cores: int = 8
    provider_latency_s: float = 30.0  # a hosted music model's time per generation (assumed)
    provider_limit: int | None = None  # the provider account's concurrent requests


@dataclass
class Row:
    component: str
    cores: float | None  # None: not a CPU matter
    workers: int | None = None
    partitions: int | None = None
    note: str = ""


def costs_from(figures: Sequence[Mapping[str, Any]], cores_here: int) -> Costs:
    """The per-unit costs among a run's figures (as dicts: JSON results or ``asdict``)."""
    costs = Costs(cores_here=cores_here)
    for f in figures:
        name, value = str(f.get("name", "")), f.get("value")
        if not isinstance(value, int | float) or math.isnan(value):
            continue
        if f.get("group") == GROUP and name.startswith(CLIP_COST):
            costs.clip_miss[name.removeprefix(CLIP_COST)] = float(value) / 1000  # shown in ms
        elif f.get("group") == "e2e" and name.startswith(JOB_COST):
            costs.job[name.removeprefix(JOB_COST)] = float(value)
        elif f.get("group") == "api" and name == "cached clip throughput" and value > 0:
            # Every core of the machine was busy serving (the submitter, MongoDB and the
            # load generator share them): an upper bound on one hit's cost.
            costs.clip_hit["submitter"] = cores_here / float(value)
    return costs


def model(costs: Costs, target: Target) -> tuple[list[Row], str]:
    """Cores, workers and partitions per component at ``target``; the first bottleneck."""
    misses = target.clips_per_s * (1 - target.hit_ratio)
    hits = target.clips_per_s * target.hit_ratio
    jobs = target.jobs_per_day / 86_400

    def load(proc: str) -> float:
        return (misses * costs.clip_miss.get(proc, 0.0) + hits * costs.clip_hit.get(proc, 0.0)
                + jobs * costs.job.get(proc, 0.0))  # fmt: skip

    rows: list[Row] = []
    for stage, (topic, registry_parts, per_worker) in STAGES.items():
        cores = load(stage)
        workers = max(1, math.ceil(cores / per_worker)) if cores > 0 else 0
        parts = max(registry_parts, 2 * workers) if registry_parts else None
        note = f"{per_worker:g} core(s) a worker"
        if parts is not None:
            note += f"; {topic}: >= 1 partition a worker, x2 to scale out without re-partitioning"
        rows.append(Row(stage, cores, workers, parts, note))
    utilisation: dict[str, float] = {}
    for server, label in SERVERS.items():
        cores = load(server)
        nodes = math.ceil(cores / target.node_cores) if cores > 0 else 0
        utilisation[label] = cores / target.node_cores
        rows.append(Row(label, cores, note=f"{nodes} node(s) of {target.node_cores} cores at "
                                           "the CPU cost measured here"))  # fmt: skip
    concurrent = jobs * costs.scenes_per_job * target.provider_latency_s
    provider_note = (f"{concurrent:.0f} generations in flight ({jobs:.2f} jobs/s x "
                     f"{costs.scenes_per_job} scenes x {target.provider_latency_s:g} s, "
                     "assumed latency: not measured here)")  # fmt: skip
    if target.provider_limit:
        utilisation["provider concurrency"] = concurrent / target.provider_limit
        provider_note += f"; limit {target.provider_limit}"
    rows.append(Row("hosted music provider", None, note=provider_note))
    first = max(utilisation, key=lambda k: utilisation[k]) if utilisation else "none"
    of = "its limit" if first == "provider concurrency" else f"one {target.node_cores}-core node"
    verdict = (
        f"first shared bottleneck: {first} ({utilisation.get(first, 0):.1f}x {of}); "
        "stage workers scale out by partitions"
    )
    return rows, verdict


def here(costs: Costs, hit_ratio: float) -> tuple[float, str]:
    """Clip requests/s this machine could take (all of it, every server on it), and which
    process would burn most of its CPU then."""
    per_request: dict[str, float] = {}
    for proc in {*costs.clip_miss, *costs.clip_hit}:
        per_request[proc] = ((1 - hit_ratio) * costs.clip_miss.get(proc, 0.0)
                             + hit_ratio * costs.clip_hit.get(proc, 0.0))  # fmt: skip
    total = sum(per_request.values())
    if total <= 0:
        return math.nan, "unknown"
    top = max(per_request, key=lambda k: per_request[k])
    return costs.cores_here / total, top


def table(rows: Sequence[Row]) -> str:
    lines = ["| component | CPU cores at target | workers | partitions | note |",
             "| --- | ---: | ---: | ---: | --- |"]  # fmt: skip
    for r in rows:
        workers = "-" if r.workers is None else str(r.workers)
        parts = "-" if r.partitions is None else str(r.partitions)
        cores = "-" if r.cores is None else f"{r.cores:.1f}"
        lines.append(f"| {r.component} | {cores} | {workers} | {parts} | {r.note} |")
    return "\n".join(lines)


# -- measuring: one clipper worker against two ----------------------------------------------


@dataclass
class Scaling:
    workers: int
    clips: int
    throughput: float  # clips/s
    cpu: dict[str, float]  # CPU s over the backlog, by process


class Requests:
    """Clip requests over distinct ranges of one episode: every one a cache miss."""

    def __init__(self, episode_id: str, duration_ms: int, clip_ms: int) -> None:
        self.episode_id, self.duration_ms, self.clip_ms = episode_id, duration_ms, clip_ms
        self.n = 0

    def next(self) -> ClipRequested:
        span = self.duration_ms - self.clip_ms
        start = (self.n * STEP_MS) % span
        self.n += 1
        if self.n * STEP_MS > span:
            raise RuntimeError("source too short for this many distinct clips")
        return ClipRequested(request_id=f"cap-{uuid.uuid4().hex[:12]}", tenant_id=TENANT,
                             producer="bench", episode_id=self.episode_id, start_ms=start,
                             duration_ms=self.clip_ms)  # fmt: skip


async def clips(settings: Settings, requests: list[ClipRequested], timeout_s: float) -> float:
    """Produce ``requests`` at once; the time until the last answer (all must be ready)."""
    topic = TOPICS.clip_requests
    consumer = AIOKafkaConsumer(TOPICS.clip_results.full_name(settings.topic_prefix),
                                bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                auto_offset_reset="latest")  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        await consumer.seek_to_end()
        wanted = {r.request_id for r in requests}
        t0 = time.perf_counter()
        futures = [await producer.send(topic.full_name(settings.topic_prefix),
                                       value=encode_event(r), key=topic.key_for(r),
                                       headers=event_headers(r)) for r in requests]  # fmt: skip
        await asyncio.gather(*futures)
        deadline = time.monotonic() + timeout_s
        while wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(wanted)} of {len(requests)} clips unanswered")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for rec in records:
                    event = decode_event(rec.value) if rec.value else None
                    if isinstance(event, ClipFailed) and event.request_id in wanted:
                        raise RuntimeError(f"clip failed: {event.error.code}")
                    if isinstance(event, ClipReady) and event.request_id in wanted:
                        if event.cache_hit:
                            raise RuntimeError("a capacity request hit the cache")
                        wanted.discard(event.request_id)
        return time.perf_counter() - t0
    finally:
        await consumer.stop()
        await producer.stop()


async def consumed(client: httpx.AsyncClient, worker: procs.Service) -> float:
    samples = await procs.scrape(client, worker)
    return procs.metric_sum(samples, "tapedeck_events_consumed_total")


async def scaling_run(
    ctx: BenchContext, workers: int, rep: int, source: tuple[int, int], backlog: int,
    timeout_s: float,
) -> Scaling:  # fmt: skip
    """``workers`` clippers on topics and a database of their own: on FerretDB a look-up
    grows with its collection, so every run starts from the same (empty) state."""
    name = f"cap{rep}w{workers}"
    settings = ctx.settings.model_copy(update={
        "topic_prefix": f"{ctx.settings.topic_prefix}{name}.",
        "mongo_db": f"{ctx.settings.mongo_db}_{name}",
    })  # fmt: skip
    duration_s, clip_ms = source
    episode_id, duration_ms = await register(ctx, settings, duration_s, name)
    make = Requests(episode_id, duration_ms, clip_ms)
    await ensure_topics(settings, [TOPICS.clip_requests, TOPICS.clip_results,
                                   TOPICS.clip_requests.dlq()])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tapedeck-bench-capacity-") as tmp:
        env = {"LOG_LEVEL": "WARNING", "TMPDIR": tmp}
        started = [procs.start("services.clipper", settings, Path(tmp), name=f"clipper-{n}",
                               web_port_var="CLIPPER_WEB_PORT", env=env)
                   for n in range(workers)]  # fmt: skip
        with procs.stopping(started):
            for w in started:
                await procs.wait_ready(w.url("/readyz"), started)
            # Until every worker has a share of the partitions and has cut a clip.
            async with httpx.AsyncClient(timeout=5) as client:
                for _ in range(20):
                    await clips(settings, [make.next() for _ in range(2 * workers)], timeout_s)
                    if all([await consumed(client, w) > 0 for w in started]):
                        break
                    await asyncio.sleep(1.0)
                else:
                    raise RuntimeError(f"not every one of {workers} clippers got partitions")
            before = {f"clipper-{n}": cpu_seconds(w.pid) for n, w in enumerate(started)}
            before.update({k: cpu_seconds(p) if p else None for k, p in stack_pids().items()})
            wall = await clips(settings, [make.next() for _ in range(backlog)], timeout_s)
            after = {f"clipper-{n}": cpu_seconds(w.pid) for n, w in enumerate(started)}
            after.update({k: cpu_seconds(p) if p else None for k, p in stack_pids().items()})
    cpu: dict[str, float] = {}
    for k, v in after.items():
        b = before.get(k)
        if v is not None and b is not None:
            name = "clipper" if k.startswith("clipper-") else k
            cpu[name] = cpu.get(name, 0.0) + v - b
    return Scaling(workers, backlog, backlog / wall, cpu)


async def register(
    ctx: BenchContext, settings: Settings, duration_s: int, name: str
) -> tuple[str, int]:
    """The source as an episode of its own: cut clips are cached in S3 by episode and
    range, and the run's S3 prefix is shared by every scaling run."""
    from services.common.episodes import EpisodeStore
    from services.common.ffmpeg import FFmpeg
    from services.common.media_store import MediaStore
    from services.common.mongo import connect, database
    from services.common.registration import register_file

    path = await asyncio.to_thread(ensure_source, duration_s, ctx.cache_dir, log=ctx.log)
    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        store = EpisodeStore(database(mongo, settings))
        await store.ensure_indexes()
        async with MediaStore.from_settings(settings) as media:
            await media.ensure_bucket()
            episode = await register_file(
                path, episode_id=f"capacity-{duration_s}s-{name}", tenant_id=TENANT,
                filename=path.name, store=store, media=media,
                ffmpeg=FFmpeg.from_settings(settings),
            )  # fmt: skip
    finally:
        await mongo.close()
    return episode.episode_id, episode.duration_ms


async def run(ctx: BenchContext, *, smoke: bool, measured: Sequence[Figure] = ()) -> list[Figure]:
    duration_s, clip_ms = (60, 5000) if smoke else (600, 30_000)
    backlog = 6 if smoke else 120
    reps = 1 if smoke else 3
    timeout_s = 120.0 if smoke else 300.0
    runs: dict[int, list[Scaling]] = {1: [], 2: []}
    for rep in range(reps):
        for workers in (1, 2):
            s = await scaling_run(ctx, workers, rep, (duration_s, clip_ms), backlog, timeout_s)
            runs[workers].append(s)
            ctx.log(f"[capacity] rep {rep + 1}/{reps}: {workers} clipper worker(s): "
                    f"{s.throughput:.1f} clips/s; CPU s: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in s.cpu.items()))  # fmt: skip
    one = median(s.throughput for s in runs[1])
    two = median(s.throughput for s in runs[2])
    scaling = round(two / one, 2) if one else None
    per_clip: dict[str, float] = {}
    for proc in sorted({k for s in runs[1] for k in s.cpu}):
        per_clip[proc] = median(s.cpu[proc] / s.clips for s in runs[1] if proc in s.cpu)
    out = [
        Figure(
            GROUP, "uncached clips, 2 clipper workers vs 1", round(two, 1), "clips/s",
            baseline_name="1 clipper worker", baseline=round(one, 1), ratio=scaling,
            target="~2x (linear)", met=None,
            note=f"ratio = 2 workers / 1 (bigger is better); {backlog} distinct "
                 f"{clip_ms / 1000:g} s clips of a {duration_s // 60} min episode at once, "
                 f"{reps} rep(s); both workers and every server share {cores()} cores",
        ),
        *[Figure(GROUP, f"{CLIP_COST}{proc}", round(v * 1000, 2), "CPU ms",
                 note="1-worker runs; the process and its children, /proc")
          for proc, v in per_clip.items()],
    ]  # fmt: skip
    figures = [{"group": f.group, "name": f.name, "value": f.value} for f in [*measured, *out]]
    costs = costs_from(figures, cores())
    rows, verdict = model(costs, Target())
    ctx.log("[capacity] model at the default target:\n" + table(rows) + "\n" + verdict)
    rate, top = here(costs, Target().hit_ratio)
    total = sum(r.cores or 0.0 for r in rows)
    parts = "; ".join(
        f"{r.component} {r.cores:.1f}" + (f" ({r.workers} workers)" if r.workers else "")
        for r in rows if r.cores
    )  # fmt: skip
    out.append(
        Figure(
            GROUP, "model: CPU cores for 1,000 clips/s (80 % cached) + 100,000 jobs/day",
            round(total, 1), "cores", note=f"{parts}; {verdict} (python -m bench.capacity)",
        )
    )  # fmt: skip
    out.append(
        Figure(
            GROUP, "clip requests/s this machine could take (80 % hits)", round(rate, 1),
            "req/s", note=f"every process on these cores; most CPU in: {top}",
        )
    )  # fmt: skip
    return out


# -- CLI ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.capacity",
                                description="The capacity model from a run's results.")  # fmt: skip
    p.add_argument("--results", type=Path,
                   default=Path(__file__).resolve().parent / "results" / "latest.json")  # fmt: skip
    d = Target()
    p.add_argument("--clips-per-s", type=float, default=d.clips_per_s)
    p.add_argument("--hit-ratio", type=float, default=d.hit_ratio)
    p.add_argument("--jobs-per-day", type=float, default=d.jobs_per_day)
    p.add_argument("--node-cores", type=int, default=d.node_cores)
    p.add_argument("--provider-latency-s", type=float, default=d.provider_latency_s)
    p.add_argument("--provider-limit", type=int, default=None)
    args = p.parse_args(argv)
    if not 0 <= args.hit_ratio <= 1:
        p.error("--hit-ratio is between 0 and 1")
    try:
        result = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        p.error(f"cannot read {args.results} ({exc}); run `make bench` first")
    costs = costs_from(result.get("figures", []), int(result.get("machine", {}).get("cores") or 2))
    target = Target(args.clips_per_s, args.hit_ratio, args.jobs_per_day, args.node_cores,
                    args.provider_latency_s, args.provider_limit)  # fmt: skip
    rows, verdict = model(costs, target)
    print(f"target: {target.clips_per_s:g} clip requests/s ({target.hit_ratio:.0%} cached), "
          f"{target.jobs_per_day:g} production jobs/day; costs from {args.results}")  # fmt: skip
    print(table(rows))
    print(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
