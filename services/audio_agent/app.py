"""The audio agent service: a Faust agent on the audio jobs topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx

from schemas import TOPICS
from schemas.names import Stage
from services.audio_agent.cache_store import MongoGenerationCache
from services.audio_agent.handler import WORKDIR_PREFIX, AudioConfig, AudioHandler, audio_failed
from services.audio_agent.providers.local import LocalProvider
from services.audio_agent.providers.registry import build_providers
from services.audio_agent.settings import AudioAgentSettings
from services.audio_agent.tiers import TierMap
from services.common.checkpoints import MongoCheckpoints
from services.common.codec import Codec
from services.common.faust_app import bind_stage, create_app
from services.common.ffmpeg import FFmpeg, remove_stale_workdirs
from services.common.job_store import JobStatusRecorder, JobStore
from services.common.kafka import KafkaEmitter
from services.common.ledger import MongoLedger
from services.common.media_store import MediaStore
from services.common.mongo import open_database
from services.common.retry import RetryPolicy
from services.common.stage import StageRunner

CLIENT_ID = "tapedeck-audio-agent"
# A job's whole budget, all scenes and retries included.
JOB_DEADLINE_S = 3 * 3600.0


@asynccontextmanager
async def audio_runner(settings: AudioAgentSettings) -> AsyncIterator[StageRunner]:
    """Every adapter the stage needs, opened once; whatever opened is closed on the way
    out, also when a later one fails to open."""
    tiers = TierMap.parse(settings.audio_tier_map)  # a bad map stops the start, clearly
    await asyncio.to_thread(remove_stale_workdirs, WORKDIR_PREFIX)
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(open_database(settings, CLIENT_ID))
        jobs, ledger = JobStore(db), MongoLedger(db)
        checkpoints, cache = MongoCheckpoints(db), MongoGenerationCache(db)
        for ensure in (
            jobs.ensure_indexes,
            ledger.ensure_indexes,
            checkpoints.ensure_indexes,
            cache.ensure_indexes,
        ):
            await ensure()
        emitter = await stack.enter_async_context(KafkaEmitter(settings, CLIENT_ID))
        media = await stack.enter_async_context(MediaStore.from_settings(settings))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=httpx.Timeout(
                    settings.provider_read_timeout_s, connect=settings.provider_connect_timeout_s
                ),
                follow_redirects=True,
            )
        )
        ffmpeg = FFmpeg.from_settings(settings)
        providers = build_providers(settings, client, LocalProvider(ffmpeg))
        handler = AudioHandler(
            providers=providers,
            media=media,
            ffmpeg=ffmpeg,
            cache=cache,
            config=AudioConfig(
                tiers=tiers,
                scene_deadline_s=settings.scene_deadline_s,
                scene_concurrency=settings.audio_scene_concurrency,
                cache_enabled=settings.audio_cache_enabled,
            ),
        )
        yield StageRunner(
            stage=Stage.AUDIO,
            codec=Codec.for_topic(TOPICS.audio_jobs, settings.max_message_bytes),
            handler=handler,
            on_failure=audio_failed,
            emitter=emitter,
            dead_letters=emitter,
            ledger=ledger,
            checkpoints=checkpoints,
            retry=RetryPolicy.from_settings(settings),
            status=JobStatusRecorder(jobs),
            deadline_s=JOB_DEADLINE_S,
        )


def build_app(settings: AudioAgentSettings) -> Any:
    app = create_app("audio-agent", settings, web_port=settings.audio_web_port)
    bind_stage(
        app,
        TOPICS.audio_jobs,
        settings,
        lambda: audio_runner(settings),
        concurrency=settings.audio_concurrency,
    )
    return app
