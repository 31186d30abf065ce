"""Running ffmpeg and ffprobe safely.

:class:`FFmpeg` is the port object handlers receive; build it once with
:meth:`FFmpeg.from_settings`. Command lines are built in :mod:`.argv`, every child process
runs through :mod:`.runner` (bounded output, timeouts, no orphans), ffprobe's JSON is read
in :mod:`.probe`; the MP3 packet scanner lives in :mod:`services.common.seek_scan`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.common.ffmpeg import runner
from services.common.ffmpeg.argv import (
    GLOBAL_ARGS,
    PROTOCOL_WHITELIST,
    build_argv,
    ffprobe_argv,
    finish_argv,
    input_,
    is_url,
    media_path,
)
from services.common.ffmpeg.probe import ProbeResult, parse_probe, probe_media
from services.common.ffmpeg.runner import (
    STDERR_LIMIT,
    FFmpegError,
    FFmpegResult,
    FFmpegTimeout,
    NotMediaError,
    ffmpeg_unavailable,
    remove_stale_workdirs,
    temp_workdir,
)

if TYPE_CHECKING:
    from services.common.seek_scan import PacketIndex
    from services.common.settings import Settings

__all__ = [
    "GLOBAL_ARGS",
    "PROTOCOL_WHITELIST",
    "STDERR_LIMIT",
    "FFmpeg",
    "FFmpegError",
    "FFmpegResult",
    "FFmpegTimeout",
    "NotMediaError",
    "ProbeResult",
    "build_argv",
    "ffmpeg_unavailable",
    "ffprobe_argv",
    "finish_argv",
    "input_",
    "is_url",
    "media_path",
    "parse_probe",
    "remove_stale_workdirs",
    "temp_workdir",
]


class FFmpeg:
    """The ffmpeg port handed to handlers: binaries and the default timeout."""

    def __init__(
        self,
        ffmpeg_bin: str = "ffmpeg",
        ffprobe_bin: str = "ffprobe",
        timeout_s: float = 300.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.ffmpeg_bin = ffmpeg_bin
        self.ffprobe_bin = ffprobe_bin
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> FFmpeg:
        return cls(settings.ffmpeg_bin, settings.ffprobe_bin, settings.ffmpeg_timeout_s)

    @staticmethod
    def input(source: str | os.PathLike[str], **kwargs: Any) -> Any:
        """``ffmpeg.input`` with a safe name and the URL protocol whitelist."""
        return input_(source, **kwargs)

    def argv(self, stream_or_argv: Any) -> list[str]:
        """The argv that :meth:`run` would execute."""
        if isinstance(stream_or_argv, str | bytes):
            raise TypeError("pass an ffmpeg-python stream spec or an argv list, not a string")
        if isinstance(stream_or_argv, Sequence) and all(isinstance(a, str) for a in stream_or_argv):
            return finish_argv(stream_or_argv)
        return build_argv(stream_or_argv, self.ffmpeg_bin)

    async def run(self, stream_or_argv: Any, *, timeout_s: float | None = None) -> FFmpegResult:
        """Run an ffmpeg-python stream spec (or an argv list starting with the binary);
        :class:`FFmpegError` on a non-zero exit, :class:`FFmpegTimeout` on a timeout."""
        argv = self.argv(stream_or_argv)
        done = await runner.run(argv, self._timeout(timeout_s))
        if done.returncode != 0:
            raise runner.exited(argv, done)
        return done

    async def probe(
        self, path_or_url: str | os.PathLike[str], *, timeout_s: float | None = None
    ) -> ProbeResult:
        """Probe a local file or an http(s) URL; :class:`NotMediaError` unless it has audio."""
        return await probe_media(path_or_url, self.ffprobe_bin, self._timeout(timeout_s))

    async def packet_index(self, path: str | os.PathLike[str], step_ms: int = 1000) -> PacketIndex:
        # Imported here: seek_scan imports this package, so a top-level import would cycle.
        from services.common.seek_scan import packet_index

        return await packet_index(path, self.ffprobe_bin, self.timeout_s, step_ms)

    def temp_workdir(
        self, prefix: str = "tapedeck-"
    ) -> contextlib.AbstractAsyncContextManager[Path]:
        return temp_workdir(prefix)

    def _timeout(self, timeout_s: float | None) -> float:
        return self.timeout_s if timeout_s is None else timeout_s
