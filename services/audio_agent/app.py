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
from services.audio_agent.handler import (
    WORKDIR_PREFIX,
    AudioConfig,
    AudioHandler,
    audio_failed,
    audio_record,
)
from services.audio_agent.providers.local import VOICE_WORKDIR_PREFIX, LocalProvider
from services.audio_agent.providers.registry import build_providers
from services.audio_agent.settings import AudioAgentSettings
from services.audio_agent.tiers import TierMap
from services.common.faust_app import bind_stage, create_app
from services.common.ffmpeg import FFmpeg, remove_stale_workdirs
from services.common.stage import StageRunner
from services.common.wiring import open_stage_adapters

CLIENT_ID = "tapedeck-audio-agent"
# A job's whole budget, all scenes and retries included.
JOB_DEADLINE_S = 3 * 3600.0


@asynccontextmanager
async def audio_runner(settings: AudioAgentSettings) -> AsyncIterator[StageRunner]:
    """Every adapter the stage needs, opened once; whatever opened is closed on the way
    out, also when a later one fails to open."""
    tiers = TierMap.parse(settings.audio_tier_map)  # a bad map stops the start, clearly
    for prefix in (WORKDIR_PREFIX, VOICE_WORKDIR_PREFIX):
        await asyncio.to_thread(remove_stale_workdirs, prefix)
    async with AsyncExitStack() as stack:
        kit = await open_stage_adapters(stack, settings, CLIENT_ID)
        cache = MongoGenerationCache(kit.db)
        await cache.ensure_indexes()
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=httpx.Timeout(
                    settings.provider_read_timeout_s, connect=settings.provider_connect_timeout_s
                ),
                follow_redirects=True,
            )
        )
        ffmpeg = FFmpeg.from_settings(settings)
        handler = AudioHandler(
            providers=build_providers(settings, client, LocalProvider(ffmpeg)),
            media=kit.media,
            ffmpeg=ffmpeg,
            cache=cache,
            config=AudioConfig(
                tiers=tiers,
                scene_deadline_s=settings.scene_deadline_s,
                scene_concurrency=settings.audio_scene_concurrency,
                cache_enabled=settings.audio_cache_enabled,
            ),
        )
        yield kit.runner(
            Stage.AUDIO, TOPICS.audio_jobs, handler, audio_failed, deadline_s=JOB_DEADLINE_S,
            record_as=audio_record,
        )  # fmt: skip


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
