"""Adapters, built once per process and closed in reverse order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from pymongo import AsyncMongoClient

from services.common.clips import ClipStore
from services.common.episodes import EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.job_store import JobStore
from services.common.kafka import KafkaEmitter
from services.common.media_store import MediaStore
from services.common.mongo import Doc, connect, database
from services.submitter.clip_requests import ClipLimits, ClipPorts
from services.submitter.episode_intake import EpisodePorts
from services.submitter.key_store import KeyStore
from services.submitter.listener import ResultsListener
from services.submitter.settings import SubmitterSettings
from services.submitter.waiter import Background, ResultWaiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: SubmitterSettings
    mongo: AsyncMongoClient[Doc]
    keys: KeyStore
    episodes: EpisodeStore
    clips: ClipStore
    jobs: JobStore
    media: MediaStore
    ffmpeg: FFmpeg
    emitter: KafkaEmitter
    waiter: ResultWaiter
    listener: ResultsListener
    background: Background

    def clip_ports(self, wait_timeout_s: float | None = None) -> ClipPorts:
        s = self.settings
        return ClipPorts(
            episodes=self.episodes,
            clips=self.clips,
            media=self.media,
            jobs=self.jobs,
            emitter=self.emitter,
            waiter=self.waiter,
            background=self.background,
            limits=ClipLimits(
                max_duration_ms=s.clip_max_duration_ms,
                url_expiry_s=s.clip_url_expiry_s,
                wait_timeout_s=s.clip_wait_timeout_s if wait_timeout_s is None else wait_timeout_s,
            ),
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
            return await self.media.client.head_bucket(Bucket=self.media.bucket)

        return {"mongo": mongo, "kafka": kafka, "s3": s3}


@asynccontextmanager
async def open_runtime(
    settings: SubmitterSettings, *, client_id: str = "submitter"
) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        mongo = connect(settings, app_name=client_id)
        stack.push_async_callback(mongo.close)
        db = database(mongo, settings)
        keys, episodes, clips, jobs = KeyStore(db), EpisodeStore(db), ClipStore(db), JobStore(db)
        await asyncio.gather(
            keys.ensure_indexes(),
            episodes.ensure_indexes(),
            clips.ensure_collections(),
            jobs.ensure_indexes(),
        )
        media = await stack.enter_async_context(MediaStore.from_settings(settings))

        emitter = KafkaEmitter(settings, client_id)
        # Registered first: a producer whose start fails half-way still gets closed.
        stack.push_async_callback(emitter.stop)
        await emitter.start()

        waiter = ResultWaiter()
        listener = ResultsListener(settings, waiter.resolve, client_id=f"{client_id}-results")
        stack.push_async_callback(listener.stop)
        # Waiting here means the first miss this process answers is already covered.
        await listener.start(ready_timeout_s=30)

        background = Background()
        # Last in, first out: in-flight emits finish before the producer stops, and
        # waiters are woken before the listener goes.
        stack.push_async_callback(background.drain, 10.0)
        stack.callback(waiter.cancel_all)
        yield Runtime(
            settings=settings,
            mongo=mongo,
            keys=keys,
            episodes=episodes,
            clips=clips,
            jobs=jobs,
            media=media,
            ffmpeg=FFmpeg.from_settings(settings),
            emitter=emitter,
            waiter=waiter,
            listener=listener,
            background=background,
        )
