"""The submitter's wiring: adapters built once per process, opened one by one on an
``AsyncExitStack`` (so a failure while opening one closes those already open) and closed
in reverse order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from pymongo import AsyncMongoClient

from schemas.job import ProductionJobSpec
from services.common.clips import ClipStore
from services.common.episodes import EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.ffmpeg.probe import MediaProbe, probe_any_media
from services.common.job_store import JobStore
from services.common.kafka import KafkaEmitter
from services.common.media_store import MediaStore
from services.common.mongo import Doc, connect, database
from services.common.obs import stats
from services.common.settings import Settings
from services.lifecycle.store import ProductionJobs
from services.ops.dlq import DeadLetterOps
from services.ops.jobs import OpsJobs
from services.submitter.clips.cache import CachedEpisodes, StoredClips
from services.submitter.clips.hit_log import HitLog
from services.submitter.clips.on_demand import ClipLimits, ClipPorts
from services.submitter.episodes import EpisodePorts
from services.submitter.jobs.control import JobControl
from services.submitter.jobs.guard import JobGuard, Limits
from services.submitter.jobs.intake import IntakePorts, Submitted, submit_production
from services.submitter.jobs.stage_jobs import StageJobPorts
from services.submitter.key_cache import CachedKeys
from services.submitter.keys import KeyStore
from services.submitter.legacy import LegacyAudioIndex, LegacyAudioPorts, MergePorts
from services.submitter.listener import ResultsListener
from services.submitter.media import MediaPorts
from services.submitter.requests import RequestPorts
from services.submitter.settings import SubmitterSettings
from services.submitter.waiter import Background, ResultWaiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: SubmitterSettings
    mongo: AsyncMongoClient[Doc]
    keys: CachedKeys
    episodes: EpisodeStore
    clips: ClipStore
    jobs: JobStore
    media: MediaStore
    ffmpeg: FFmpeg
    emitter: KafkaEmitter
    waiter: ResultWaiter
    listener: ResultsListener
    background: Background
    production: ProductionJobs
    guard: JobGuard
    control: JobControl
    # The operator API's (``/v1/ops``): every tenant's jobs, and the dead letters.
    ops_jobs: OpsJobs
    dead_letters: DeadLetterOps
    # The cached-clip path's per-process state (services/submitter/clips/cache.py).
    cached_episodes: CachedEpisodes
    stored_clips: StoredClips
    hit_log: HitLog

    def requests(self) -> RequestPorts:
        return RequestPorts(
            jobs=self.jobs, emitter=self.emitter, waiter=self.waiter, background=self.background
        )

    def clip_ports(self, wait_timeout_s: float | None = None) -> ClipPorts:
        s = self.settings
        return ClipPorts(
            episodes=self.cached_episodes,
            clips=self.clips,
            media=self.media,
            requests=self.requests(),
            limits=ClipLimits(
                max_duration_ms=s.clip_max_duration_ms,
                url_expiry_s=s.clip_url_expiry_s,
                wait_timeout_s=s.clip_wait_timeout_s if wait_timeout_s is None else wait_timeout_s,
            ),
            stored=self.stored_clips,
            hits=self.hit_log,
        )

    def clip_ports_in_memory(self) -> ClipPorts:
        """The clip ports answering a hit from this process's memory only, never waiting
        on MongoDB or S3 (the cached-clip fast path)."""
        ports = self.clip_ports()
        return replace(ports, episodes=self.cached_episodes.in_memory,
                       stored=self.stored_clips.in_memory)  # fmt: skip

    async def intake(
        self, tenant_id: str, spec: ProductionJobSpec, idempotency_key: str | None
    ) -> Submitted:
        return await submit_production(self.intake_ports(), tenant_id, spec,
                                       idempotency_key=idempotency_key)  # fmt: skip

    def intake_ports(self) -> IntakePorts:
        s = self.settings
        return IntakePorts(jobs=self.production, guard=self.guard, media=self.media,
                           emitter=self.emitter, allow_http_callbacks=s.webhook_allow_http,
                           allow_private_callbacks=s.webhook_allow_private)  # fmt: skip

    def stage_job_ports(self) -> StageJobPorts:
        return StageJobPorts(jobs=self.jobs, emitter=self.emitter, guard=self.guard)

    def media_ports(self) -> MediaPorts:
        ffmpeg = self.ffmpeg

        async def probe(path: Path) -> MediaProbe:
            return await probe_any_media(path, ffmpeg.ffprobe_bin, ffmpeg.timeout_s)

        return MediaPorts(media=self.media, probe=probe)

    def merge_ports(self) -> MergePorts:
        s = self.settings
        return MergePorts(
            requests=self.requests(),
            media=self.media,
            bucket=s.s3_bucket,
            key_prefix=self.media.key_prefix,
            wait_timeout_s=s.merge_wait_timeout_s,
            url_expiry_s=s.job_url_expiry_s,
            admit=self.guard.admit,
        )

    def legacy_audio_ports(self) -> LegacyAudioPorts:
        return LegacyAudioPorts(
            jobs=self.jobs,
            aliases=LegacyAudioIndex(database(self.mongo, self.settings)),
            media=self.media,
            emitter=self.emitter,
            url_expiry_s=self.settings.job_url_expiry_s,
            admit=self.guard.admit,
        )

    def episode_ports(self) -> EpisodePorts:
        return EpisodePorts(store=self.episodes, media=self.media, ffmpeg=self.ffmpeg)

    def health_checks(self) -> dict[str, Callable[[], Awaitable[object]]]:
        async def mongo() -> object:
            return await self.mongo.admin.command("ping")

        async def kafka() -> object:
            await self.listener.ping(timeout_s=5)
            if not self.listener.ready:
                raise ConnectionError("results listener is not positioned")
            return None

        async def s3() -> object:
            await self.media.ping()
            return None

        return {"mongo": mongo, "kafka": kafka, "s3": s3}


@asynccontextmanager
async def open_runtime(
    settings: SubmitterSettings, *, client_id: str = "submitter"
) -> AsyncIterator[Runtime]:
    """Create the result topics (``TOPICS.results()``) first: the listener is ready only
    once it reads every one of them."""
    async with AsyncExitStack() as stack:
        mongo = await stack.enter_async_context(_mongo(settings, client_id))
        db = database(mongo, settings)
        keys, clips, jobs = KeyStore(db), ClipStore(db), JobStore(db)
        episodes = EpisodeStore(db, directories=False)  # the API cuts nothing
        production = ProductionJobs(db)
        guard = JobGuard(db, Limits(settings.job_rate_per_minute, settings.job_max_in_flight))
        await asyncio.gather(
            keys.ensure_indexes(),
            episodes.ensure_indexes(),
            clips.ensure_collections(),
            jobs.ensure_indexes(),
            production.ensure_indexes(),
            guard.ensure_indexes(),
            LegacyAudioIndex(db).ensure_indexes(),
        )
        await stack.enter_async_context(stats.recording(db))
        media = await stack.enter_async_context(MediaStore.from_settings(settings))
        emitter = await stack.enter_async_context(_emitter(settings, client_id))
        waiter = ResultWaiter()
        listener = await stack.enter_async_context(
            _listener(settings, waiter, f"{client_id}-results")
        )
        background = Background()
        # Last in, first out: in-flight emits finish before the producer stops, and
        # waiters are woken before the listener goes.
        stack.push_async_callback(background.drain, 10.0)
        stack.callback(waiter.cancel_all)
        ops_jobs = OpsJobs(db, JobControl(db, emitter), media, settings.job_url_expiry_s)
        await ops_jobs.ensure_indexes()
        cached_keys = CachedKeys(keys, ttl_s=settings.key_cache_ttl_s,
                                 max_entries=settings.key_cache_max)  # fmt: skip
        cached_episodes = CachedEpisodes(episodes, ttl_s=settings.episode_cache_ttl_s,
                                         max_entries=settings.episode_cache_max)  # fmt: skip
        stored_clips = StoredClips(clips, media, ttl_s=settings.clip_cache_ttl_s,
                                   max_entries=settings.clip_cache_max)  # fmt: skip
        for cache in (cached_keys.cache, cached_episodes.cache, stored_clips.cache):
            stack.push_async_callback(cache.aclose)
        hit_log = await stack.enter_async_context(
            HitLog(clips, max_ranges=settings.hit_log_max_ranges).flushing(settings.hit_log_flush_s)
        )
        yield Runtime(
            settings=settings,
            mongo=mongo,
            keys=cached_keys,
            episodes=episodes,
            clips=clips,
            jobs=jobs,
            media=media,
            ffmpeg=FFmpeg.from_settings(settings),
            emitter=emitter,
            waiter=waiter,
            listener=listener,
            background=background,
            production=production,
            guard=guard,
            control=JobControl(db, emitter),
            ops_jobs=ops_jobs,
            dead_letters=DeadLetterOps(settings, db),
            cached_episodes=cached_episodes,
            stored_clips=stored_clips,
            hit_log=hit_log,
        )


@asynccontextmanager
async def _mongo(settings: Settings, client_id: str) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client = connect(settings, app_name=client_id)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def _emitter(settings: Settings, client_id: str) -> AsyncIterator[KafkaEmitter]:
    emitter = KafkaEmitter(settings, client_id)
    try:
        # Inside the try: a producer whose start fails half-way still gets closed.
        await emitter.start()
        yield emitter
    finally:
        await emitter.stop()


@asynccontextmanager
async def _listener(
    settings: Settings, waiter: ResultWaiter, client_id: str
) -> AsyncIterator[ResultsListener]:
    listener = ResultsListener(settings, waiter.resolve, client_id=client_id)
    try:
        # Waiting here means the first miss this process answers is already covered.
        await listener.start(ready_timeout_s=30)
        yield listener
    finally:
        await listener.stop()
