"""The merger service: a Faust agent on the merge requests topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from schemas import TOPICS
from schemas.names import Stage
from services.common.faust_app import bind_stage, create_app
from services.common.ffmpeg import remove_stale_workdirs
from services.common.stage import StageRunner
from services.common.wiring import open_stage_adapters
from services.merger.handler import MergeConfig, MergeHandler, merge_failed, record_key
from services.merger.invalid import answer_invalid_merge_request
from services.merger.settings import MergerSettings
from services.merger.sources import Limits
from services.merger.tools import WORKDIR_PREFIX, FFmpegTools, pick_video_encoder

CLIENT_ID = "tapedeck-merger"


@asynccontextmanager
async def merge_runner(settings: MergerSettings) -> AsyncIterator[StageRunner]:
    """Every adapter the stage needs, opened once and closed on the way out."""
    root = settings.merge_workdir or None
    # A merge killed with its process leaves its scratch directory behind: clear those first.
    await asyncio.to_thread(remove_stale_workdirs, WORKDIR_PREFIX, 0, root)
    tools = FFmpegTools(settings.ffmpeg_bin, settings.ffprobe_bin, workdir_root=root)
    encoder = await pick_video_encoder(tools, settings.merge_video_encoder)
    async with AsyncExitStack() as stack:
        kit = await open_stage_adapters(stack, settings, CLIENT_ID)
        handler = MergeHandler(
            media=kit.media,
            tools=tools,
            config=MergeConfig(
                limits=Limits(settings.merge_max_inputs,
                              round(settings.merge_max_duration_s * 1000)),
                video_encoder=encoder,
                timeout_factor=settings.merge_timeout_factor,
                timeout_min_s=settings.merge_timeout_min_s,
            ),
        )  # fmt: skip
        yield kit.runner(
            Stage.MERGE,
            TOPICS.merge_requests,
            handler,
            merge_failed,
            on_invalid=answer_invalid_merge_request,
            deadline_s=settings.merge_deadline_s,
            record_as=record_key,
        )


def build_app(settings: MergerSettings) -> Any:
    app = create_app("merger", settings, web_port=settings.merger_web_port)
    bind_stage(
        app,
        TOPICS.merge_requests,
        settings,
        lambda: merge_runner(settings),
        concurrency=settings.merger_concurrency,
    )
    return app
