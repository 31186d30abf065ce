"""The lifecycle service: one Faust agent per topic it follows (job requests and every
stage's results), all sharing one set of adapters and one handler, plus a sweep that
fails overdue videos and re-sends what a dead worker claimed but never sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from schemas import TOPICS, Topic
from services.common.faust_app import bind_stage, create_app
from services.common.shared import Shared
from services.common.stage import StageRunner
from services.common.wiring import StageAdapters, open_stage_adapters
from services.lifecycle.handler import LifecycleHandler, job_failed
from services.lifecycle.invalid import answer_invalid_job_request
from services.lifecycle.settings import LifecycleSettings
from services.lifecycle.store import ProductionJobs

log = logging.getLogger(__name__)

CLIENT_ID = "tapedeck-lifecycle"
STAGE = "lifecycle"
FOLLOWS = (TOPICS.jobs_requests, TOPICS.video_results, TOPICS.audio_results, TOPICS.merge_results)


@dataclass
class _Opened:
    kit: StageAdapters
    handler: LifecycleHandler


@asynccontextmanager
async def open_lifecycle(settings: LifecycleSettings) -> AsyncIterator[_Opened]:
    async with AsyncExitStack() as stack:
        kit = await open_stage_adapters(stack, settings, CLIENT_ID)
        jobs = ProductionJobs(kit.db)
        await jobs.ensure_indexes()
        handler = LifecycleHandler(
            jobs=jobs, emitter=kit.emitter, video_timeout_s=settings.video_timeout_s
        )
        yield _Opened(kit, handler)


def build_app(settings: LifecycleSettings) -> Any:
    app = create_app("lifecycle", settings, web_port=settings.lifecycle_web_port)
    shared: Shared[_Opened] = Shared(lambda: open_lifecycle(settings))

    def runner_for(topic: Topic) -> Any:
        @asynccontextmanager
        async def open_runner() -> AsyncIterator[StageRunner]:
            opened = await shared.acquire()
            try:
                # Its own status is the job document; no stage record of its own.
                intake = topic is TOPICS.jobs_requests
                runner = opened.kit.runner(
                    STAGE, topic, opened.handler, job_failed,
                    on_invalid=answer_invalid_job_request if intake else None,
                    cancellable=False,  # it is what cancels; it reads the status itself
                )  # fmt: skip
                runner.status = None
                yield runner
            finally:
                await shared.release()

        return open_runner

    for topic in FOLLOWS:
        bind_stage(app, topic, settings, runner_for(topic),
                   concurrency=settings.lifecycle_concurrency)  # fmt: skip

    @app.timer(interval=settings.lifecycle_sweep_s)
    async def sweep() -> None:
        opened = await shared.acquire()
        try:
            await opened.handler.expire_videos()
            await opened.handler.relay(settings.outbox_grace_s)
        except Exception:
            log.exception("lifecycle sweep failed; trying again at the next one")
        finally:
            await shared.release()

    return app
