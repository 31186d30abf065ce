"""The merger's integration fixtures: media made once per session, a handler on the real
media store and ffmpeg, and a way to put inputs in the bucket."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas.merge import MergeParams, MergeRequested
from services.common.media_store import MediaStore
from services.merger.handler import MergeConfig, MergeHandler
from services.merger.sources import Limits
from services.merger.tools import FFmpegTools
from tests.integration.merger import media


@dataclass(frozen=True)
class Clips:
    a: Path  # 2 s, 320x240 at 25 fps, AAC stereo
    b: Path  # 3 s, same encoding as a: joinable by stream copy
    small: Path  # 2 s, 160x120 at 15 fps, no audio
    fast: Path  # 1 s, 256x144 at 30 fps, AAC
    tones: list[Path]  # three 10 s tones (wav)
    music_long: Path  # 4.5 s, quiet
    music_short: Path  # 2 s, quiet
    voice: Path  # 3 s


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    d = tmp_path_factory.mktemp("merger-media")
    return Clips(
        a=media.make_video(d / "a.mp4", 2, tone=440),
        b=media.make_video(d / "b.mp4", 3, tone=660),
        small=media.make_video(d / "small.mp4", 2, size="160x120", rate=15, tone=None,
                               source="testsrc"),
        fast=media.make_video(d / "fast.mp4", 1, size="256x144", rate=30, tone=550),
        tones=[media.make_tone(d / f"tone{f}.wav", 10, f, 0.5) for f in (330, 440, 550)],
        music_long=media.make_tone(d / "music-long.wav", 4.5, 220, 0.05),
        music_short=media.make_tone(d / "music-short.wav", 2, 220, 0.05),
        voice=media.make_voice(d / "voice.wav", 3),
    )  # fmt: skip


async def put(store: MediaStore, files: dict[str, Path]) -> None:
    await asyncio.gather(*(store.upload_file(k, p) for k, p in files.items()))


def handler_for(
    store: MediaStore, *, workdir: Path | None = None, max_inputs: int = 20,
    max_duration_ms: int = 600_000,
) -> MergeHandler:  # fmt: skip
    tools = FFmpegTools(workdir_root=workdir)
    return MergeHandler(
        media=store, tools=tools, config=MergeConfig(Limits(max_inputs, max_duration_ms))
    )


def merge_request(
    operation: str, inputs: list[str], output: str, job_id: str = "job-1",
    step: str | None = None, **params: Any,
) -> MergeRequested:  # fmt: skip
    return MergeRequested(job_id=job_id, tenant_id="acme", producer="tests", step=step,
                          operation=operation, inputs=inputs,  # type: ignore[arg-type]
                          params=MergeParams(**params), output_key=output)  # fmt: skip
