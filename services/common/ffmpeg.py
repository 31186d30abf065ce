"""Running ffmpeg and ffprobe safely.

* Command lines are built with ffmpeg-python and run with ``create_subprocess_exec``: never a
  shell string. Every ffmpeg command gets ``-hide_banner -nostdin -nostats -y``; every http(s)
  input gets ``-protocol_whitelist http,https,tcp,tls`` as an input option, so a remote playlist
  cannot pull in ``file:`` or other protocols.
* :func:`run_ffmpeg` keeps only the last 64 KiB of stderr, kills the process on timeout or
  cancellation, and maps failures onto the shared taxonomy: a non-zero exit is a
  :class:`FFmpegError` (permanent), a timeout is a :class:`FFmpegTimeout` (transient).
* :class:`FFmpeg` is the port object handlers receive; build it once with
  :meth:`FFmpeg.from_settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import ffmpeg as ffmpeg_lib

from services.common.errors import PermanentError, TransientError

if TYPE_CHECKING:
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
    "ffprobe",
    "ffprobe_argv",
    "input_",
    "is_url",
    "media_path",
    "run_ffmpeg",
    "temp_workdir",
]

GLOBAL_ARGS: Final = ("-hide_banner", "-nostdin", "-nostats", "-y")
PROTOCOL_WHITELIST: Final = "http,https,tcp,tls"
STDERR_LIMIT: Final = 64 * 1024
STDERR_TAIL_LINES: Final = 20
STDOUT_LIMIT: Final = 8 * 1024 * 1024
_READ_CHUNK: Final = 4096
_KILL_WAIT_S: Final = 5.0


class FFmpegError(PermanentError):
    """ffmpeg exited with a non-zero status; the message ends with the stderr tail."""

    code = "ffmpeg_failed"

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class FFmpegTimeout(TransientError):
    """ffmpeg (or ffprobe) ran longer than allowed and was killed."""

    def __init__(self, message: str, *, timeout_s: float, stderr: str = "") -> None:
        super().__init__(message)
        self.timeout_s = timeout_s
        self.stderr = stderr


class NotMediaError(PermanentError):
    """ffprobe could not read the input, or it has no audio stream."""

    code = "not_audio"


@dataclass(frozen=True, slots=True)
class FFmpegResult:
    argv: tuple[str, ...]
    returncode: int
    stderr: str  # the last STDERR_LIMIT bytes, decoded
    elapsed_s: float

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        return _tail_lines(self.stderr, lines)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    format_name: str
    duration_ms: int | None
    bit_rate: int | None
    size_bytes: int | None
    codec: str  # codec of the first audio stream
    sample_rate: int | None
    channels: int | None
    has_video: bool  # a real video stream; cover art (attached_pic) does not count


# -- argv building --------------------------------------------------------------------------------


def is_url(source: object) -> bool:
    """True for http(s) URLs (the only remote inputs we allow)."""
    return isinstance(source, str) and source[:8].lower().startswith(("http://", "https://"))


def media_path(source: str | os.PathLike[str]) -> str:
    """An input/output name that ffmpeg cannot mistake for an option or a protocol.

    URLs are returned unchanged; local paths are made absolute, so ``-x.mp3`` or
    ``concat:a|b`` are read as plain files.
    """
    if isinstance(source, str) and is_url(source):
        return source
    return os.path.abspath(os.fspath(source))


def input_(source: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``ffmpeg.input`` with a safe name and, for URLs, the protocol whitelist.

    With ``f="lavfi"`` the source is a filter graph and is passed through unchanged.
    """
    if kwargs.get("f", kwargs.get("format")) == "lavfi":
        return ffmpeg_lib.input(os.fspath(source), **kwargs)
    name = media_path(source)
    if is_url(name):
        kwargs.setdefault("protocol_whitelist", PROTOCOL_WHITELIST)
    return ffmpeg_lib.input(name, **kwargs)


def _with_protocol_whitelist(args: list[str]) -> list[str]:
    """Insert ``-protocol_whitelist`` before every ``-i URL`` that does not have one."""
    out: list[str] = []
    options_start = 0  # index in ``out`` where the current input's options begin
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-i" and i + 1 < len(args):
            source = args[i + 1]
            if is_url(source) and "-protocol_whitelist" not in out[options_start:]:
                out += ["-protocol_whitelist", PROTOCOL_WHITELIST]
            out += [arg, source]
            options_start = len(out)
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def build_argv(stream_spec: Any, ffmpeg_bin: str = "ffmpeg") -> list[str]:
    """Compile an ffmpeg-python stream spec into a safe argv list (no shell involved)."""
    compiled = ffmpeg_lib.compile(stream_spec, cmd=ffmpeg_bin)
    return finish_argv(compiled)


def finish_argv(argv: Sequence[str]) -> list[str]:
    """Add the global flags and URL protocol whitelists to an argv list (idempotent)."""
    if isinstance(argv, str | bytes) or not argv:
        raise TypeError("argv must be a non-empty sequence of strings, not a shell string")
    if not all(isinstance(a, str) for a in argv):
        raise TypeError("every argv item must be a str")
    rest = list(argv[1:])
    missing = [flag for flag in GLOBAL_ARGS if flag not in rest]
    return [argv[0], *missing, *_with_protocol_whitelist(rest)]


def ffprobe_argv(source: str | os.PathLike[str], ffprobe_bin: str = "ffprobe") -> list[str]:
    name = media_path(source)
    argv = [ffprobe_bin, "-hide_banner", "-v", "error"]
    if is_url(name):
        argv += ["-protocol_whitelist", PROTOCOL_WHITELIST]
    argv += ["-print_format", "json", "-show_format", "-show_streams", "-i", name]
    return argv


# -- running --------------------------------------------------------------------------------------


def _tail_lines(text: str, lines: int) -> str:
    parts = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    return "\n".join(parts[-lines:])


async def _read_bounded(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    """Read a stream to EOF, keeping only its last ``limit`` bytes."""
    if stream is None:
        return b""
    chunks: deque[bytes] = deque()
    size = 0
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        while size - len(chunks[0]) >= limit:
            size -= len(chunks.popleft())
    return b"".join(chunks)[-limit:]


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), _KILL_WAIT_S)


@dataclass(slots=True)
class _Completed:
    returncode: int
    stdout: bytes
    stderr: str
    elapsed_s: float


async def _exec(argv: Sequence[str], timeout_s: float, *, capture_stdout: bool) -> _Completed:
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture_stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise PermanentError(
            f"cannot run {argv[0]!r}: {exc.strerror or exc}", code="ffmpeg_unavailable"
        ) from exc
    stderr_task = asyncio.create_task(_read_bounded(proc.stderr, STDERR_LIMIT))
    stdout_task = asyncio.create_task(_read_bounded(proc.stdout, STDOUT_LIMIT))
    try:
        async with asyncio.timeout(timeout_s):
            # Shielded so a timeout leaves the readers alive to collect the stderr tail.
            returncode = await proc.wait()
            stdout = await asyncio.shield(stdout_task)
            stderr = await asyncio.shield(stderr_task)
    except TimeoutError:
        await asyncio.shield(_kill(proc))
        stdout_task.cancel()
        text = (await _finish_reader(stderr_task)).decode("utf-8", "replace")
        raise FFmpegTimeout(
            f"{Path(argv[0]).name} timed out after {timeout_s:g}s and was killed\n"
            f"{_tail_lines(text, STDERR_TAIL_LINES)}".rstrip(),
            timeout_s=timeout_s,
            stderr=text,
        ) from None
    except BaseException:
        await asyncio.shield(_kill(proc))
        stdout_task.cancel()
        stderr_task.cancel()
        raise
    return _Completed(
        returncode=returncode,
        stdout=stdout,
        stderr=stderr.decode("utf-8", "replace"),
        elapsed_s=time.monotonic() - started,
    )


async def _finish_reader(task: asyncio.Task[bytes]) -> bytes:
    """After a kill the pipes close: collect what was read, but do not wait long."""
    try:
        return await asyncio.wait_for(task, 1.0)
    except Exception:
        task.cancel()
        return b""


async def run_ffmpeg(argv: Sequence[str], timeout_s: float) -> FFmpegResult:
    """Run an ffmpeg argv list; raise :class:`FFmpegError` / :class:`FFmpegTimeout` on failure."""
    args = tuple(finish_argv(argv))  # idempotent: adds the global flags and URL whitelists
    done = await _exec(args, timeout_s, capture_stdout=False)
    if done.returncode != 0:
        tail = _tail_lines(done.stderr, STDERR_TAIL_LINES)
        raise FFmpegError(
            f"{Path(args[0]).name} exited with status {done.returncode}:\n{tail}",
            returncode=done.returncode,
            stderr=done.stderr,
        )
    return FFmpegResult(
        argv=args, returncode=done.returncode, stderr=done.stderr, elapsed_s=done.elapsed_s
    )


# -- probing --------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def _ms(seconds: Any) -> int | None:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if value != value or value < 0:  # NaN or negative
        return None
    return round(value * 1000)


def parse_probe(data: dict[str, Any], source: str = "input") -> ProbeResult:
    """Build a :class:`ProbeResult` from ffprobe's JSON output."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise NotMediaError(f"{source}: no audio stream")
    has_video = any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        for s in streams
    )
    duration_ms = _ms(fmt.get("duration"))
    if duration_ms is None:
        duration_ms = _ms(audio.get("duration"))
    return ProbeResult(
        format_name=str(fmt.get("format_name") or ""),
        duration_ms=duration_ms,
        bit_rate=_int(fmt.get("bit_rate")),
        size_bytes=_int(fmt.get("size")),
        codec=str(audio.get("codec_name") or ""),
        sample_rate=_int(audio.get("sample_rate")),
        channels=_int(audio.get("channels")),
        has_video=has_video,
    )


async def _probe(source: str | os.PathLike[str], ffprobe_bin: str, timeout_s: float) -> ProbeResult:
    argv = ffprobe_argv(source, ffprobe_bin)
    name = argv[-1]
    done = await _exec(argv, timeout_s, capture_stdout=True)
    if done.returncode != 0:
        tail = _tail_lines(done.stderr, STDERR_TAIL_LINES)
        raise NotMediaError(f"ffprobe could not read {name}:\n{tail}")
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise NotMediaError(f"ffprobe output for {name} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise NotMediaError(f"ffprobe output for {name} is not a JSON object")
    return parse_probe(data, name)


async def ffprobe(
    path_or_url: str | os.PathLike[str], settings: Settings, *, timeout_s: float | None = None
) -> ProbeResult:
    """Probe a local file or an http(s) URL; :class:`NotMediaError` unless it has audio."""
    return await _probe(
        path_or_url,
        settings.ffprobe_bin,
        settings.ffmpeg_timeout_s if timeout_s is None else timeout_s,
    )


# -- temp files -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def temp_workdir(
    prefix: str = "tapedeck-", dir: str | os.PathLike[str] | None = None
) -> AsyncIterator[Path]:
    """A fresh temporary directory, removed on exit even on error or cancellation."""
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix, dir=dir))
    try:
        yield path
    finally:
        # Shielded: a second cancellation must not leave the directory behind.
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))


# -- the port -------------------------------------------------------------------------------------


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
        """Run an ffmpeg-python stream spec (or an argv list starting with the binary)."""
        return await run_ffmpeg(
            self.argv(stream_or_argv), self.timeout_s if timeout_s is None else timeout_s
        )

    async def packet_index(self, path: str | os.PathLike[str], step_ms: int = 1000) -> PacketIndex:
        return await packet_index(path, self.ffprobe_bin, self.timeout_s, step_ms)

    async def probe(
        self, path_or_url: str | os.PathLike[str], *, timeout_s: float | None = None
    ) -> ProbeResult:
        return await _probe(
            path_or_url, self.ffprobe_bin, self.timeout_s if timeout_s is None else timeout_s
        )

    def temp_workdir(
        self, prefix: str = "tapedeck-"
    ) -> contextlib.AbstractAsyncContextManager[Path]:
        return temp_workdir(prefix)


# -- seek index -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PacketIndex:
    times_ms: list[float]  # whole ms when sampled; exact (to the µs) with step_ms=0
    offsets: list[int]
    end_ms: float  # end of the last packet: exact even for VBR without a TOC
    # Gapless info (LAME tag): samples a decoder drops at the start and at the end.
    skip_samples: int = 0
    discard_samples: int = 0


async def packet_index(
    path: str | os.PathLike[str], ffprobe_bin: str, timeout_s: float, step_ms: int = 1000
) -> PacketIndex:
    """Read every audio packet's time and byte offset, keeping about one per ``step_ms``
    (every one with ``step_ms=0``).

    Streams ffprobe's output line by line: a 3-hour MP3 has ~400k frames, more than
    is worth holding in memory at once.
    """
    argv = [
        ffprobe_bin, "-v", "error", "-select_streams", "a:0",
        "-show_entries", "packet=pts_time,duration_time,pos:packet_side_data",
        "-of", "csv=p=0", media_path(path),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stderr_task = asyncio.create_task(_read_bounded(proc.stderr, STDERR_LIMIT))
    times: list[float] = []
    offsets: list[int] = []
    end_ms = 0.0
    next_at = 0.0
    skip = discard = 0
    try:
        async with asyncio.timeout(timeout_s):
            assert proc.stdout is not None
            async for line in proc.stdout:
                parts = line.decode().strip().split(",")
                if len(parts) < 3 or "N/A" in (parts[0], parts[2]):
                    continue
                t = float(parts[0]) * 1000
                d = 0.0 if parts[1] == "N/A" else float(parts[1]) * 1000
                end_ms = max(end_ms, t + d)
                if len(parts) >= 6 and parts[3] == "Skip Samples":
                    if not times:
                        skip = int(parts[4])
                    discard = int(parts[5])
                if t >= next_at:
                    times.append(round(t, 3) if step_ms == 0 else float(round(t)))
                    offsets.append(int(parts[2]))
                    next_at = t + step_ms
            returncode = await proc.wait()
    except BaseException:
        await asyncio.shield(_kill(proc))
        stderr_task.cancel()
        raise
    stderr = (await stderr_task).decode("utf-8", "replace")
    if returncode != 0 or not times:
        raise NotMediaError(f"ffprobe found no audio packets:\n{_tail_lines(stderr, 10)}")
    return PacketIndex(times, offsets, end_ms, skip, discard)
