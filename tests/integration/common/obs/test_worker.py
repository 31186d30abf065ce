"""A real Faust worker (the clipper) on the real stack: ``/metrics`` and ``/readyz`` are
scraped, and a consumer that stops fetching while records wait turns ``/readyz`` red; the
worker that replaces it handles what waited and is ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from schemas import TOPICS
from services.clipper.app import build_app
from services.clipper.settings import ClipperSettings
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from tests.support.kafka import produce
from tests.support.services import free_port


async def _until(check: Callable[[], Awaitable[object]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_stalled_consumer_turns_readyz_red(settings: Settings) -> None:
    await ensure_topics(settings)
    port = free_port()
    clipper = ClipperSettings.model_construct(
        **{**settings.model_dump(), "stall_window_s": 3.0, "stall_check_s": 1.0},
        clipper_concurrency=1,
        clipper_web_port=port,
    )
    app = build_app(clipper)
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    base = f"http://127.0.0.1:{port}"

    # The worker serves from this test's event loop: every request must await.
    http = httpx.AsyncClient(base_url=base, timeout=10)

    async def get(path: str) -> httpx.Response:
        return await http.get(path)

    async def status(path: str) -> int:
        return (await get(path)).status_code

    async def metric(name: str, **labels: str) -> float | None:
        return _metric((await get("/metrics")).text, name, **labels)

    async def assigned_any() -> bool:
        return bool(app.consumer.assignment())

    await app.start()
    try:
        await _until(assigned_any, 60, "partitions to be assigned")
        await _until(lambda: _is(status("/readyz"), 200), 60, "the worker to be ready")
        assert (await get("/healthz")).json()["status"] == "ok"

        # Work flows: unreadable requests are dead-lettered and counted. The registry is
        # the process's: series shared with other tests are read as increases.
        base = (await get("/metrics")).text

        def grew(text: str, name: str, **labels: str) -> float:
            return (_metric(text, name, **labels) or 0) - (_metric(base, name, **labels) or 0)

        await produce(settings, topic, [b"not json"] * 2)

        async def two_dead() -> bool:
            return await metric("tapedeck_dead_letters_total", topic=topic) == 2

        await _until(two_dead, 30, "two dead letters counted")
        scrape = (await get("/metrics")).text
        assert _metric(scrape, "tapedeck_events_consumed_total", stage="clip", topic=topic) == 2
        assert grew(scrape, "tapedeck_stage_outcomes_total", stage="clip",
                    outcome="dead_letter") == 2  # fmt: skip
        assert grew(scrape, "tapedeck_stage_duration_seconds_count", stage="clip",
                    outcome="dead_letter") == 2  # fmt: skip

        # The consumer stops fetching (Faust's known silent stop) while records wait.
        assigned = app.consumer.assignment()
        app.consumer.pause_partitions(assigned)
        await produce(settings, topic, [b"{}"] * 3)
        await _until(lambda: _is(status("/readyz"), 503), 30, "readyz to turn red")
        body = (await get("/readyz")).json()
        assert body["checks"]["consumer"].startswith("stalled: 3 records waiting"), body
        assert body["checks"]["mongo"] == "ok" and body["checks"]["s3"] == "ok"
        # Liveness fails too: a restart is what cures a stalled consumer.
        assert (await get("/healthz")).json()["checks"]["consumer"].startswith("stalled")
        scrape = (await get("/metrics")).text
        assert _metric(scrape, "tapedeck_consumer_stalled", group=app.conf.id) == 1
        lag = sum(
            _metric(scrape, "tapedeck_consumer_lag", group=app.conf.id, topic=topic,
                    partition=str(tp.partition)) or 0
            for tp in assigned
        )  # fmt: skip
        assert lag == 3

        # What Kubernetes does on a red readiness that lasts: the worker is replaced. The
        # new one takes over from the committed offsets, handles all three and is ready.
        await app.stop()
        app = build_app(clipper)
        await app.start()
        await _until(lambda: _is(metric("tapedeck_dead_letters_total", topic=topic), 5.0), 60,
                     "the waiting records to be handled")  # fmt: skip
        await _until(lambda: _is(status("/readyz"), 200), 30, "readyz to recover")
        assert await metric("tapedeck_consumer_stalled", group=app.conf.id) == 0
        assert await status("/healthz") == 200
    finally:
        await http.aclose()
        await app.stop()
