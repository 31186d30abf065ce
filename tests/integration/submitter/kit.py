"""Helpers shared by the submitter's integration tests.

``running_api`` serves the real app in process, inside its lifespan, against the real
stack with the isolated names of the ``settings`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.common.ffmpeg import FFmpeg
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.submitter.http.app import create_api
from services.submitter.keys import create_key
from services.submitter.runtime import Runtime
from services.submitter.settings import SubmitterSettings


def submitter_settings(base: Settings, **env: Any) -> SubmitterSettings:
    """``base`` with submitter settings given by their environment names."""
    return SubmitterSettings(**{**base.model_dump(by_alias=True), **env})


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI
    settings: SubmitterSettings

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def key_for(self, tenant: str) -> dict[str, str]:
        """Headers carrying a new key of ``tenant``, made by the code the CLI uses."""
        _, key = await create_key(self.runtime.keys, tenant)
        return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def running_api(base: Settings, **env: Any) -> AsyncIterator[Api]:
    settings = submitter_settings(base, **env)
    # Every topic, as the service creates them at start: any job kind can be submitted.
    await ensure_topics(settings)
    app = create_api(settings)
    async with app.router.lifespan_context(app):
        await app.state.runtime.media.ensure_bucket()
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://submitter.test") as c:
            yield Api(c, app, settings)


async def make_tone(path: Path, seconds: float = 3.0) -> Path:
    stream = FFmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi").output(
        str(path), acodec="libmp3lame", ar=44100, ac=1, audio_bitrate="64k"
    )
    await FFmpeg().run(stream, timeout_s=30)
    return path
