"""``/metrics`` on the API port: request counts and latencies by route template, and the
jobs by kind and status (read from MongoDB at most every ``JOBS_TTL_S``, so a scrape
every few seconds costs one aggregation, not one per scrape).

The middleware is plain ASGI (no ``BaseHTTPMiddleware``): it adds no task or copy per
request on the cache-hit path, which must stay cheap.
"""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.job_store import JOBS
from services.common.mongo import database
from services.common.obs import metrics
from services.submitter.http.deps import RuntimeDep

JOBS_TTL_S: Final = 10.0
# Requests that matched no route are counted under one label, not under each path a
# scanner tried (which would grow the series without bound).
UNMATCHED: Final = "unmatched"

router = APIRouter(tags=["health"])


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, template).observe(time.perf_counter() - started)


class _JobsGauge:
    def __init__(self) -> None:
        self.read_at = float("-inf")
        self.seen: set[tuple[str, str]] = set()

    async def refresh(self, jobs: Any) -> None:
        if time.monotonic() - self.read_at < JOBS_TTL_S:
            return
        counts: dict[tuple[str, str], int] = {}
        pipeline = [{"$group": {"_id": {"kind": "$kind", "status": "$status"}, "n": {"$sum": 1}}}]
        async for row in await jobs.aggregate(pipeline):
            key = (str(row["_id"].get("kind") or "unknown"), str(row["_id"].get("status")))
            counts[key] = int(row["n"])
        # A status no job has any more reads 0 rather than its last count.
        for key in self.seen - counts.keys():
            metrics.JOBS.labels(*key).set(0)
        for key, n in counts.items():
            metrics.JOBS.labels(*key).set(n)
        self.seen |= counts.keys()
        self.read_at = time.monotonic()


_jobs_gauge = _JobsGauge()


@router.get("/metrics", include_in_schema=False)
async def metrics_page(runtime: RuntimeDep) -> Response:
    try:
        await _jobs_gauge.refresh(database(runtime.mongo, runtime.settings)[JOBS])
    except Exception:
        # MongoDB away: the other metrics still answer (readiness reports the outage).
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
