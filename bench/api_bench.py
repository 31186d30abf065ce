"""API benchmark: a cached clip over HTTP, against the same server's cheapest answer.

A real submitter (``python -m services.submitter``, ``API_WORKERS`` processes) serves an
episode with one clip already cut. ``wrk`` drives it at 16 connections for a fixed time:

- the **cached clip** ``GET /api/v1/audio_clips/{episode}?start_time_ms=..`` with a key;
- the **floor**: the same request without a key, which the server refuses (401) before any
  lookup: routing, the middleware and one error body, and nothing else.

Both runs alternate (floor, hit, floor, hit, ...) so other work on the machine weighs on
both alike. It reports p50, p99 and requests/s of each, the ratios, and the absolute
targets. MongoDB round trips per hit are counted in process: the same app and runtime,
driven through the ASGI interface, with pymongo command monitoring counting the commands
each request's own task issues (the background flushers and cache refreshes are
separate tasks, counted apart).

    python -m bench.api_bench [--workers 2] [--seconds 10] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr
from pymongo import monitoring

from bench.figures import BenchContext, Figure, median, ratio
from services.common.clip_rules import plan_clip
from services.common.clips import ClipStore
from services.common.episodes import Episode, EpisodeStore
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from services.submitter.keys import KeyStore, create_key

ROOT = Path(__file__).resolve().parent.parent
GROUP = "api"
TENANT = "bench-api"
CONNECTIONS = 16
WORKERS = 2
CLIP_BYTES = b"\xff\xfb" + b"\0" * 4094  # what is in the bucket does not matter to a hit

# wrk's own summary of a run, as one JSON line (latencies in microseconds).
_WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Load:
    """One wrk run."""

    requests: int
    seconds: float
    status_errors: int  # answers outside 2xx/3xx
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Seeded:
    key: str
    path: str  # the cached clip's request path and query


# -- the served world ----------------------------------------------------------------------------


async def seed(settings: Settings) -> Seeded:
    """A key, a registered episode and one clip of it already cut and recorded."""
    # Its own id: the suite's modules share one database.
    episode_id = f"ep-api-{uuid.uuid4().hex[:8]}"
    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        db = database(mongo, settings)
        keys, episodes, clips = KeyStore(db), EpisodeStore(db), ClipStore(db)
        await asyncio.gather(keys.ensure_indexes(), episodes.ensure_indexes(),
                             clips.ensure_collections())  # fmt: skip
        _, key = await create_key(keys, TENANT)
        episode = Episode(episode_id=episode_id, tenant_id=TENANT,
                          s3_key=f"episodes/{episode_id}/source.mp3", duration_ms=3_600_000,
                          format_name="mp3", codec="mp3", size_bytes=1)  # fmt: skip
        await episodes.insert(episode, None)
        plan = plan_clip(episode, 60_000, 30_000, "mp3", False, settings.clip_max_duration_ms)
        async with MediaStore.from_settings(settings) as media:
            await media.ensure_bucket()

            async def body() -> AsyncIterator[bytes]:
                yield CLIP_BYTES

            size = await media.upload_stream(plan.key, body(), "audio/mpeg")
        await clips.insert(plan, size, 1234)
    finally:
        await mongo.close()
    path = (f"/api/v1/audio_clips/{episode_id}?start_time_ms={plan.start_ms}"
            f"&duration_ms={plan.duration_ms}")  # fmt: skip
    return Seeded(key, path)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """``settings`` as the environment a service reads them from."""
    env = {**os.environ}
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is not None and field.alias is not None:
            env[field.alias] = (
                value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            )
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def submitter(settings: Settings, workers: int, logdir: Path) -> Iterator[str]:
    """A real submitter with ``workers`` API processes; yields its base URL once every
    process has started and it answers ``/readyz``."""
    port = _free_port()
    log_path = logdir / "submitter.log"
    # Otherwise configured as deployed: LOG_LEVEL as set (INFO by default), so every
    # answer, the floor's too, writes its access line.
    env = service_env(settings, API_PORT=str(port), API_WORKERS=str(workers))
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.submitter"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, workers, log_path)
        yield base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base: str, workers: int, log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the submitter exited early:\n{log_path.read_text()[-4000:]}")
        try:
            # Each process answers /readyz only once its runtime is open; a run of them in
            # a row on fresh connections reaches every worker with high probability.
            ok = all(httpx.get(f"{base}/readyz", timeout=5).status_code == 200
                     for _ in range(4 * workers))  # fmt: skip
            if ok:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the submitter was not ready in 90 s:\n{log_path.read_text()}")
        time.sleep(0.3)


# -- load ----------------------------------------------------------------------------------------


def wrk_bin() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` (scripts/stack up does)")
    return found


def wrk(url: str, seconds: float, headers: dict[str, str], script: Path) -> Load:
    argv = [wrk_bin(), "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "-s", str(script)]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("{"))
    r = json.loads(line)
    return Load(
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        status_errors=r["status_errors"],
        socket_errors=r["socket_errors"],
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
    )


# -- MongoDB round trips per hit -----------------------------------------------------------------


_ON_PATH: ContextVar[list[str] | None] = ContextVar("api_bench_on_path", default=None)


class _Commands(monitoring.CommandListener):
    """Counts every command, and apart those sent on a request's path: by the request's
    own code or a task it started and waits for (a cache's shared read), which inherit
    the context variable; background work (flushers, a cache's refresh ahead) does not."""

    def __init__(self) -> None:
        self.total = 0
        self.active = True  # listeners stay registered for good: off once measured

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.active:
            return
        self.total += 1
        on_path = _ON_PATH.get()
        if on_path is not None:
            on_path.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass(frozen=True)
class RoundTrips:
    hits: int
    worst: int  # most commands one warm hit waited for
    on_path: float  # per warm hit, on the request path
    all_: float  # per warm hit, everything the process sent meanwhile (flushes, refreshes)


async def mongo_round_trips(settings: Settings, seeded: Seeded, hits: int) -> RoundTrips:
    """Warm the caches with one hit, then send ``hits`` more through the real app in
    process, one after another, and count MongoDB commands."""
    from services.submitter.http.app import create_api
    from services.submitter.runtime import open_runtime
    from services.submitter.settings import SubmitterSettings

    listener = _Commands()
    monitoring.register(listener)  # for clients made from here on: the runtime's
    api_settings = SubmitterSettings.model_validate(service_env(settings))
    app = create_api(api_settings)
    headers = {"X-API-Key": seeded.key}
    async with open_runtime(api_settings, client_id="tapedeck-bench") as runtime:
        app.state.runtime = runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def one() -> int:
                seen: list[str] = []
                token = _ON_PATH.set(seen)
                try:
                    resp = await client.get(seeded.path, headers=headers)
                finally:
                    _ON_PATH.reset(token)
                if resp.status_code != 200 or not resp.json()["cache_hit"]:
                    raise RuntimeError(f"not a hit: {resp.status_code} {resp.text[:200]}")
                return len(seen)

            cold = await one()
            if cold == 0:
                raise RuntimeError("the first hit sent no command: the count is broken")
            total_before = listener.total
            counts = [await one() for _ in range(hits)]
            total = listener.total - total_before
    listener.active = False
    return RoundTrips(hits, max(counts), sum(counts) / hits, total / hits)


# -- the figures ---------------------------------------------------------------------------------


async def run(ctx: BenchContext, *, smoke: bool) -> list[Figure]:
    return await measure(ctx, workers=WORKERS, seconds=2 if smoke else 10,
                         rounds=1 if smoke else 3, trip_hits=20 if smoke else 200)  # fmt: skip


async def measure(
    ctx: BenchContext, *, workers: int, seconds: float, rounds: int, trip_hits: int = 200
) -> list[Figure]:
    settings = ctx.settings
    seeded = await seed(settings)
    ctx.log(f"api: seeded {seeded.path}; {workers} API worker(s), {CONNECTIONS} connections")
    floors: list[Load] = []
    hits: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(_WRK_REPORT)
        with submitter(settings, workers, Path(tmp)) as base:
            url = base + seeded.path
            key = {"X-API-Key": seeded.key}
            # Warm every worker's caches (and the connections) before measuring.
            await asyncio.to_thread(wrk, url, 1, key, script)
            for n in range(rounds):
                floor = await asyncio.to_thread(wrk, url, seconds, {}, script)
                hit = await asyncio.to_thread(wrk, url, seconds, key, script)
                ctx.log(f"api: round {n + 1}: hit {_show(hit)}; floor (401) {_show(floor)}")
                if hit.status_errors or hit.socket_errors:
                    raise RuntimeError(f"cached clip run had errors: {hit}")
                if floor.status_errors != floor.requests:
                    raise RuntimeError(f"floor run had answers other than 401: {floor}")
                floors.append(floor)
                hits.append(hit)
        trips = await mongo_round_trips(settings, seeded, trip_hits)
    ctx.log(f"api: MongoDB commands per warm hit: {trips.on_path:.3f} on the request path "
            f"(worst {trips.worst}), {trips.all_:.3f} with background work")  # fmt: skip
    return figures(hits, floors, trips, workers)


def _show(load: Load) -> str:
    return f"{load.rps:.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms"


def figures(hits: Sequence[Load], floors: Sequence[Load], trips: RoundTrips,
            workers: int) -> list[Figure]:  # fmt: skip
    setup = f"{CONNECTIONS} connections, {workers} API worker(s), wrk, median of {len(hits)} runs"
    p50, p99 = median(h.p50_ms for h in hits), median(h.p99_ms for h in hits)
    rps = median(h.rps for h in hits)
    f50, f99 = median(f.p50_ms for f in floors), median(f.p99_ms for f in floors)
    frps = median(f.rps for f in floors)
    floor_name = "floor: same request, no key (401)"
    p50_ratio, rps_ratio = ratio(p50, f50), ratio(frps, rps)
    return [
        Figure(GROUP, "cached clip p50", round(p50, 3), "ms", floor_name, round(f50, 3),
               p50_ratio, "<= 2x floor and < 10 ms",
               met=p50_ratio is not None and p50_ratio <= 2 and p50 < 10, note=setup),
        Figure(GROUP, "cached clip p99", round(p99, 3), "ms", floor_name, round(f99, 3),
               ratio(p99, f99), "< 50 ms", met=p99 < 50, note=setup),
        Figure(GROUP, "cached clip throughput", round(rps, 1), "req/s", floor_name,
               round(frps, 1), rps_ratio, "floor/value <= 2x and >= 1000 req/s",
               met=rps_ratio is not None and rps_ratio <= 2 and rps >= 1000,
               note=f"ratio is floor / value (more req/s is better: <= 2 is within 2x); "
                    f"{setup}"),
        Figure(GROUP, "MongoDB round trips per cached hit", trips.on_path, "commands",
               target="<= 1", met=trips.worst <= 1,
               note=f"request path, warm caches, {trips.hits} hits, worst {trips.worst}; "
                    f"{trips.all_:.3f} per hit with the background flushes and refreshes"),
    ]  # fmt: skip


# -- standalone ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def isolated(base: Settings) -> AsyncIterator[Settings]:
    """A fresh topic prefix, database and S3 key prefix, removed afterwards."""
    run_id = uuid.uuid4().hex[:12]
    settings = base.model_copy(update={"topic_prefix": f"bench{run_id}.",
                                       "mongo_db": f"bench_{run_id}",
                                       "s3_key_prefix": f"bench/{run_id}/"})  # fmt: skip
    try:
        yield settings
    finally:
        await _cleanup(settings)


async def _cleanup(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    mongo = connect(settings, app_name="tapedeck-bench")
    try:
        await mongo.drop_database(settings.mongo_db)
    finally:
        await mongo.close()
    async with MediaStore.from_settings(settings) as media:
        await media.delete_prefix("")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def _main(args: argparse.Namespace) -> list[Figure]:
    async with isolated(Settings()) as settings:
        ctx = BenchContext(settings, ROOT / ".stack" / "bench", lambda m: print(m, flush=True))
        if args.smoke:
            return await run(ctx, smoke=True)
        return await measure(ctx, workers=args.workers, seconds=args.seconds, rounds=args.rounds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__)
    parser.add_argument("--workers", type=int, default=WORKERS, help="API worker processes")
    parser.add_argument("--seconds", type=float, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="floor/hit pairs")
    parser.add_argument("--smoke", action="store_true", help="a couple of seconds")
    args = parser.parse_args(argv)
    for f in asyncio.run(_main(args)):
        print(json.dumps(f.__dict__))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
