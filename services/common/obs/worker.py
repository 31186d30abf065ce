"""``/metrics``, ``/healthz`` and ``/readyz`` on a Faust worker's web port.

``/readyz`` asks MongoDB, Kafka and S3, and judges the consumer
(:func:`~services.common.obs.health.consumer_verdict`) from the end offsets of the
partitions assigned to this worker and its group's committed offsets, both read with
clients of its own: a stalled consumer's own view of the log stops moving with it.
``/healthz`` (liveness) answers while the event loop runs and fails only on a stalled
consumer, which a restart cures; an outage of a backing server must not restart the
worker, so it only turns ``/readyz`` red. The verdict it reads is the last one the
periodic check reached: liveness does no I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from contextlib import AsyncExitStack
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.media_store import MediaStore
from services.common.mongo import connect
from services.common.obs import metrics
from services.common.obs.health import OK, Progress, consumer_verdict, run_checks
from services.common.settings import Settings

log = logging.getLogger(__name__)

_HEALTH: weakref.WeakKeyDictionary[Any, WorkerHealth] = weakref.WeakKeyDictionary()


def progress_of(app: Any) -> Progress:
    """The progress tracker of ``app``'s worker (every agent of the app reports to it)."""
    return health_of(app).progress


def health_of(app: Any) -> WorkerHealth:
    health = _HEALTH.get(app)
    if health is None:
        raise LookupError("no health installed on this app (create it with create_app)")
    return health


class WorkerHealth:
    def __init__(self, app: Any, settings: Settings, group_id: str) -> None:
        self.app = app
        self.settings = settings
        self.group_id = group_id
        self.progress = Progress()
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        self._mongo: Any = None
        self._media: MediaStore | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._rebalance_started: float | None = None
        self.last_verdict = OK
        self._lag_labels: set[tuple[str, str, str]] = set()

    # -- the probes' own clients, opened on first use and kept ------------------------

    async def _open(self) -> None:
        async with self._lock:
            if self._stack is not None:
                return
            stack = AsyncExitStack()
            try:
                s = self.settings
                self._mongo = connect(s, "tapedeck-health")
                stack.push_async_callback(self._mongo.close)
                self._media = await stack.enter_async_context(MediaStore.from_settings(s))
                admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap,
                                            request_timeout_ms=5000)  # fmt: skip
                await admin.start()
                stack.push_async_callback(admin.close)
                offsets = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap,
                                           enable_auto_commit=False, group_id=None,
                                           request_timeout_ms=5000)  # fmt: skip
                await offsets.start()
                stack.push_async_callback(offsets.stop)
                self._admin, self._offsets = admin, offsets
            except BaseException:
                await stack.aclose()
                raise
            self._stack = stack

    async def close(self) -> None:
        async with self._lock:
            stack, self._stack = self._stack, None
            if stack is not None:
                await stack.aclose()

    # -- checks -----------------------------------------------------------------------

    def assigned(self) -> list[TopicPartition]:
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return []
        return sorted(TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment())

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records past the group's committed offset on each partition assigned here."""
        await self._open()
        assert self._admin is not None and self._offsets is not None
        tps = self.assigned()
        if not tps:
            for gone in self._lag_labels:
                metrics.CONSUMER_LAG.remove(*gone)
            self._lag_labels = set()
            return {}
        ends = await self._offsets.end_offsets(tps)
        starts = await self._offsets.beginning_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        lag: dict[tuple[str, int], int] = {}
        labels = {(self.group_id, tp.topic, str(tp.partition)) for tp in tps}
        # A partition a rebalance took away is another worker's now: its last value here
        # would read as lag that never moves.
        for gone in self._lag_labels - labels:
            metrics.CONSUMER_LAG.remove(*gone)
        self._lag_labels = labels
        for tp in tps:
            meta = committed.get(tp)
            # Never committed: the group starts at the earliest offset (auto_offset_reset).
            done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            lag[(tp.topic, tp.partition)] = max(0, ends[tp] - done)
            metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(
                lag[(tp.topic, tp.partition)]
            )
        return lag

    def _rebalancing_s(self) -> float | None:
        if getattr(self.app, "rebalancing", False):
            if self._rebalance_started is None:
                self._rebalance_started = time.monotonic()
            return time.monotonic() - self._rebalance_started
        self._rebalance_started = None
        return None

    async def consumer(self) -> str:
        verdict = consumer_verdict(
            self.progress,
            await self.lag(),
            window_s=self.settings.stall_window_s,
            deadline_s=self.settings.stall_deadline_s,
            rebalancing_s=self._rebalancing_s(),
        )
        self.last_verdict = verdict
        metrics.CONSUMER_STALLED.labels(self.group_id).set(0 if verdict == OK else 1)
        if verdict != OK:
            log.error("%s: consumer %s", self.group_id, verdict)
        return verdict

    async def _mongo_ping(self) -> None:
        await self._open()
        await self._mongo.admin.command("ping")

    async def _s3_ping(self) -> None:
        await self._open()
        assert self._media is not None
        await self._media.ping()

    async def readiness(self) -> dict[str, str]:
        # Opened here (bounded) so a server that is down shows as its own check.
        try:
            await asyncio.wait_for(self._open(), 10)
        except Exception as exc:
            return {"kafka": f"down: {type(exc).__name__}", "mongo": "unknown", "s3": "unknown",
                    "consumer": "unknown"}  # fmt: skip
        return await run_checks(
            {"mongo": self._mongo_ping, "s3": self._s3_ping, "consumer": self.consumer}
        )


def install(app: Any, settings: Settings, group_id: str) -> WorkerHealth:
    """Track ``app``'s progress; serve the endpoints when its web server is enabled."""
    health = WorkerHealth(app, settings, group_id)
    _HEALTH[app] = health

    class ProbeClients(Service):
        # Faust stops the services it started with the app: the probes' clients go too.
        async def on_stop(self) -> None:
            await health.close()

    app.service(ProbeClients)

    if app.conf.web_enabled:
        _pages(app, health)

    @app.timer(interval=settings.stall_check_s, on_leader=False)
    async def watch_consumer() -> None:
        # Keeps the lag and stall gauges current between scrapes of /readyz.
        try:
            await health.consumer()
        except Exception as exc:
            log.warning("%s: consumer check failed: %r", group_id, exc)

    return health


def _pages(app: Any, health: WorkerHealth) -> None:
    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        verdict = health.last_verdict
        if verdict == OK:
            return web.json({"status": "ok", "checks": {}})
        return web.json({"status": "stalled", "checks": {"consumer": verdict}}, status=503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks = await health.readiness()
        ok = all(v == OK for v in checks.values())
        return web.json({"status": "ok" if ok else "degraded", "checks": checks},
                        status=200 if ok else 503)  # fmt: skip
