"""The clipper service: a Faust agent on the clip requests topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from schemas import TOPICS
from services.clipper.cutter import FFmpegCutter
from services.clipper.handler import ClipConfig, ClipHandler, clip_failed
from services.clipper.invalid import answer_invalid_clip_request
from services.clipper.settings import ClipperSettings
from services.common.clips import ClipStore
from services.common.codec import Codec
from services.common.episodes import EpisodeStore
from services.common.faust_app import bind_stage, create_app
from services.common.ffmpeg import FFmpeg
from services.common.job_store import JobStatusRecorder, JobStore
from services.common.kafka import KafkaEmitter
from services.common.ledger import MongoLedger
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.retry import RetryPolicy
from services.common.stage import StageRunner

STAGE = "clip"


@asynccontextmanager
async def clip_runner(settings: ClipperSettings) -> AsyncIterator[StageRunner]:
    """Every adapter the stage needs, opened once and closed on the way out."""
    mongo = connect(settings, "tapedeck-clipper")
    db = database(mongo, settings)
    episodes, clips, jobs, ledger = EpisodeStore(db), ClipStore(db), JobStore(db), MongoLedger(db)
    for ensure in (
        episodes.ensure_indexes,
        clips.ensure_collections,
        jobs.ensure_indexes,
        ledger.ensure_indexes,
    ):
        await ensure()
    emitter = KafkaEmitter(settings, "tapedeck-clipper")
    await emitter.start()
    try:
        async with MediaStore.from_settings(settings) as media:
            handler = ClipHandler(
                episodes=episodes,
                clips=clips,
                media=media,
                cutter=FFmpegCutter(media, FFmpeg.from_settings(settings), episodes),
                config=ClipConfig(settings.clip_max_duration_ms, settings.clip_url_expiry_s),
            )
            yield StageRunner(
                stage=STAGE,
                codec=Codec.for_topic(TOPICS.clip_requests, settings.max_message_bytes),
                handler=handler,
                on_failure=clip_failed,
                emitter=emitter,
                dead_letters=emitter,
                ledger=ledger,
                retry=RetryPolicy.from_settings(settings),
                status=JobStatusRecorder(jobs),
                on_invalid=answer_invalid_clip_request,
            )
    finally:
        await emitter.stop()
        await mongo.close()


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
