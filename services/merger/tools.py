"""The merger's ffmpeg adapter: probing inputs for what a merge needs, running the recipes
with their progress report, scratch directories. Every child goes through the kit's one
process path (``services.common.ffmpeg``): argv lists, timeouts, killed with us."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from services.common.ffmpeg import FFmpegError, ffprobe_argv, runner, temp_workdir
from services.common.ffmpeg.progress import run_with_progress
from services.merger.formats import VIDEO_ENCODER_ARGS
from services.merger.media import MediaInfo, Unusable, parse_media

WORKDIR_PREFIX = "tapedeck-merge-"
OnTime = Callable[[float], Awaitable[None]]


class FFmpegTools:
    def __init__(
        self,
        ffmpeg_bin: str = "ffmpeg",
        ffprobe_bin: str = "ffprobe",
        *,
        probe_timeout_s: float = 60.0,
        workdir_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.ffmpeg_bin = ffmpeg_bin
        self.ffprobe_bin = ffprobe_bin
        self.probe_timeout_s = probe_timeout_s
        self.workdir_root = workdir_root

    async def probe(self, source: str | os.PathLike[str]) -> MediaInfo:
        """:class:`Unusable` when ffprobe cannot read ``source`` or it holds no audio or
        video; the codec setup data is hashed, so inputs can be compared for copying."""
        argv = ffprobe_argv(source, self.ffprobe_bin)
        argv[-2:-2] = ["-show_data_hash", "CRC32"]
        done = await runner.run(argv, self.probe_timeout_s, capture_stdout=True)
        if done.returncode != 0:
            # Storage that failed mid-read says nothing about the input: retried, not refused.
            if runner.network_failure(done.stderr):
                raise runner.exited(argv, done)
            raise Unusable(f"ffprobe could not read {argv[-1]}:\n{done.stderr_tail()}")
        try:
            data = json.loads(done.stdout)
        except ValueError as exc:
            raise Unusable(f"ffprobe output for {argv[-1]} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise Unusable(f"ffprobe output for {argv[-1]} is not a JSON object")
        return parse_media(data)

    async def run(self, args: Sequence[str], timeout_s: float, on_time: OnTime) -> None:
        await run_with_progress([self.ffmpeg_bin, *args], timeout_s, on_time)

    async def run_for_stderr(self, args: Sequence[str], timeout_s: float, on_time: OnTime) -> str:
        """Run a pass whose result is a report on stderr (loudnorm's first pass)."""
        done = await run_with_progress([self.ffmpeg_bin, *args], timeout_s, on_time)
        return done.stderr

    def workdir(self) -> contextlib.AbstractAsyncContextManager[Path]:
        return temp_workdir(WORKDIR_PREFIX, dir=self.workdir_root)

    async def write_text(self, path: Path, text: str) -> None:
        await asyncio.to_thread(path.write_text, text, "utf-8")

    async def encoders(self) -> set[str]:
        done = await runner.run(
            [self.ffmpeg_bin, "-hide_banner", "-encoders"], 30, capture_stdout=True
        )
        if done.returncode != 0:
            raise FFmpegError(f"ffmpeg -encoders failed:\n{done.stderr_tail()}")
        names = set()
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
                names.add(parts[1])
        return names


async def pick_video_encoder(tools: FFmpegTools, wanted: str = "") -> str:
    """``wanted`` if given (it must exist), else the first of ``VIDEO_ENCODER_ARGS`` the
    local ffmpeg has: builds without libx264 still merge."""
    have = await tools.encoders()
    if wanted:
        if wanted not in VIDEO_ENCODER_ARGS or wanted not in have:
            raise ValueError(f"video encoder {wanted!r} is not available here")
        return wanted
    for name in VIDEO_ENCODER_ARGS:
        if name in have:
            return name
    raise ValueError("ffmpeg has none of the video encoders " + ", ".join(VIDEO_ENCODER_ARGS))
