"""The clipper service: a Faust agent on the clip requests topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from schemas import TOPICS
from schemas.names import Stage
from services.clipper.cutter import CUT_WORKDIR_PREFIX, FFmpegCutter
from services.clipper.episode_cache import CachedEpisodes
from services.clipper.handler import ClipConfig, ClipHandler, clip_failed
from services.clipper.invalid import answer_invalid_clip_request
from services.clipper.settings import ClipperSettings
from services.common.clips import ClipStore
from services.common.episodes import EpisodeStore
from services.common.faust_app import bind_stage, create_app
from services.common.ffmpeg import FFmpeg, remove_stale_workdirs
from services.common.stage import StageRunner
from services.common.wiring import open_stage_adapters

CLIENT_ID = "tapedeck-clipper"


@asynccontextmanager
async def clip_runner(settings: ClipperSettings) -> AsyncIterator[StageRunner]:
    """Every adapter the stage needs, opened once and closed on the way out."""
    # A cut killed with its process leaves its scratch directory behind: clear those first.
    await asyncio.to_thread(remove_stale_workdirs, CUT_WORKDIR_PREFIX)
    async with AsyncExitStack() as stack:
        kit = await open_stage_adapters(stack, settings, CLIENT_ID)
        episodes, clips = EpisodeStore(kit.db), ClipStore(kit.db)
        await episodes.ensure_indexes()
        await clips.ensure_collections()
        handler = ClipHandler(
            episodes=CachedEpisodes(episodes),
            clips=clips,
            media=kit.media,
            cutter=FFmpegCutter(kit.media, FFmpeg.from_settings(settings), episodes),
            config=ClipConfig(settings.clip_max_duration_ms, settings.clip_url_expiry_s),
        )
        # Before the database closes: the records of clips already answered for.
        stack.push_async_callback(handler.settle)
        yield kit.runner(
            Stage.CLIP,
            TOPICS.clip_requests,
            handler,
            clip_failed,
            on_invalid=answer_invalid_clip_request,
            # A clip answers in well under a second: no job to cancel, no read to pay for.
            cancellable=False,
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
