"""The clipper service: a Faust agent on the clip requests topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from schemas import TOPICS
from schemas.names import Stage
from services.clipper.cutter import CUT_WORKDIR_PREFIX, FFmpegCutter
from services.clipper.handler import ClipConfig, ClipHandler, clip_failed
from services.clipper.invalid import answer_invalid_clip_request
from services.clipper.settings import ClipperSettings
from services.common.checkpoints import MongoCheckpoints
from services.common.clips import ClipStore
from services.common.codec import Codec
from services.common.episodes import EpisodeStore
from services.common.faust_app import bind_stage, create_app
from services.common.ffmpeg import FFmpeg, remove_stale_workdirs
from services.common.job_store import JobStatusRecorder, JobStore
from services.common.kafka import KafkaEmitter
from services.common.ledger import MongoLedger
from services.common.media_store import MediaStore
from services.common.mongo import open_database
from services.common.retry import RetryPolicy
from services.common.stage import StageRunner

CLIENT_ID = "tapedeck-clipper"


@asynccontextmanager
async def clip_runner(settings: ClipperSettings) -> AsyncIterator[StageRunner]:
    """Every adapter the stage needs, opened once; whatever opened is closed on the way
    out, also when a later one fails to open."""
    # A cut killed with its process leaves its scratch directory behind: clear those first.
    await asyncio.to_thread(remove_stale_workdirs, CUT_WORKDIR_PREFIX)
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(open_database(settings, CLIENT_ID))
        episodes, clips, jobs = EpisodeStore(db), ClipStore(db), JobStore(db)
        ledger, checkpoints = MongoLedger(db), MongoCheckpoints(db)
        for ensure in (
            episodes.ensure_indexes,
            clips.ensure_collections,
            jobs.ensure_indexes,
            ledger.ensure_indexes,
            checkpoints.ensure_indexes,
        ):
            await ensure()
        emitter = await stack.enter_async_context(KafkaEmitter(settings, CLIENT_ID))
        media = await stack.enter_async_context(MediaStore.from_settings(settings))
        handler = ClipHandler(
            episodes=episodes,
            clips=clips,
            media=media,
            cutter=FFmpegCutter(media, FFmpeg.from_settings(settings), episodes),
            config=ClipConfig(settings.clip_max_duration_ms, settings.clip_url_expiry_s),
        )
        yield StageRunner(
            stage=Stage.CLIP,
            codec=Codec.for_topic(TOPICS.clip_requests, settings.max_message_bytes),
            handler=handler,
            on_failure=clip_failed,
            emitter=emitter,
            dead_letters=emitter,
            ledger=ledger,
            checkpoints=checkpoints,
            retry=RetryPolicy.from_settings(settings),
            status=JobStatusRecorder(jobs),
            on_invalid=answer_invalid_clip_request,
        )


def build_app(settings: ClipperSettings) -> Any:
    app = create_app("clipper", settings, web_port=settings.clipper_web_port)
    bind_stage(
        app,
        TOPICS.clip_requests,
        settings,
        lambda: clip_runner(settings),
        concurrency=settings.clipper_concurrency,
    )
    return app
