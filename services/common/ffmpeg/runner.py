"""The one way Tapedeck runs a child process (ffmpeg, ffprobe).

* Bounded capture: only the last 64 KiB of stderr (8 MiB of stdout) is kept, so a chatty
  or hostile input cannot grow our memory.
* No orphans: a child runs in its own process group, which is killed on timeout or
  cancellation; on Linux it also gets SIGKILL when we die (``PR_SET_PDEATHSIG``), so a
  crashed or OOM-killed service does not leave ffmpeg running.
* Bounded resources: a child may map at most ``ResourceLimits.memory_bytes`` (a frame
  bomb fails to allocate instead of starving the host) and use at most its timeout's worth
  of CPU on every core (the kernel kills it even if our timer never fires).
* Failures map onto the shared taxonomy: a missing binary is a permanent
  ``ffmpeg_unavailable``, a timeout a transient :class:`FFmpegTimeout`. What a non-zero
  exit means is for the caller to say (:class:`FFmpegError`, :class:`NotMediaError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import math
import os
import re
import resource
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from services.common.errors import PermanentError, TransientError
from services.common.obs import metrics

__all__ = [
    "STDERR_LIMIT",
    "STDOUT_LIMIT",
    "FFmpegError",
    "FFmpegNetworkError",
    "FFmpegResult",
    "FFmpegTimeout",
    "LineStream",
    "NotMediaError",
    "ResourceLimits",
    "abandon",
    "exited",
    "ffmpeg_unavailable",
    "network_failure",
    "remove_stale_workdirs",
    "run",
    "stream_lines",
    "temp_workdir",
]

STDERR_LIMIT: Final = 64 * 1024
STDERR_TAIL_LINES: Final = 20
STDOUT_LIMIT: Final = 8 * 1024 * 1024
_READ_CHUNK: Final = 4096
_KILL_WAIT_S: Final = 5.0
_PR_SET_PDEATHSIG: Final = 1


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """What one child may use. 4 GiB of address space holds ffmpeg's threads and buffers
    for 4K video with room to spare; a decoder asked for a far larger frame fails."""

    memory_bytes: int | None = 4 * 1024**3
    # CPU seconds per second of the timeout: every core busy the whole time, and some.
    cpu_per_wall_s: float | None = float(os.cpu_count() or 1) + 1.0

    def apply(self, timeout_s: float) -> None:
        """In the child, before exec: async-signal-safe calls only."""
        if self.memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        if self.cpu_per_wall_s is not None:
            cpu = math.ceil(timeout_s * self.cpu_per_wall_s) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))


DEFAULT_LIMITS: Final = ResourceLimits()


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


class FFmpegNetworkError(TransientError):
    """ffmpeg (or ffprobe) lost the URL it was reading or writing: the connection was
    refused, reset or timed out, or the server answered 5xx. Storage failed, not the media:
    the stage waits the outage out and runs it again."""

    def __init__(self, message: str, *, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


# What ffmpeg's tcp and http protocols print when the network or the server failed; a file
# that is not media fails with "Invalid data found", a missing object with a 4xx.
_NETWORK_FAILURE: Final = re.compile(
    r"Connection refused|Connection reset by peer|Connection timed out|Operation timed out"
    r"|Broken pipe|Network is unreachable|No route to host|Failed to resolve hostname"
    r"|Server returned 5\d\d|Stream ends prematurely",
    re.IGNORECASE,
)


# A server that closed the connection before it answered: the URL's own line says "End of
# file" and no demuxer spoke first. A file cut short fails inside its demuxer, which says
# so on a line of its own ("[mov,mp4,... @ 0x...] error reading header") before that one.
_URL_EOF: Final = re.compile(r"^\S+://\S*: End of file$", re.MULTILINE)
_COMPONENT_LINE: Final = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]", re.MULTILINE)


def network_failure(stderr: str) -> bool:
    """Whether a failed run's stderr says its URL could not be read or written."""
    if _NETWORK_FAILURE.search(stderr) is not None:
        return True
    return _URL_EOF.search(stderr) is not None and _COMPONENT_LINE.search(stderr) is None


def exited(argv: Sequence[str], done: FFmpegResult) -> FFmpegError | FFmpegNetworkError:
    """The error for a run of ``argv`` that exited non-zero: a network failure, or else
    the tool's own (:class:`FFmpegError`)."""
    what = f"{Path(argv[0]).name} exited with status {done.returncode}:\n{done.stderr_tail()}"
    if network_failure(done.stderr):
        return FFmpegNetworkError(what, stderr=done.stderr)
    return FFmpegError(what, returncode=done.returncode, stderr=done.stderr)


class NotMediaError(PermanentError):
    """ffprobe could not read the input, or it has no audio stream."""

    code = "not_audio"


def ffmpeg_unavailable(binary: str, exc: OSError) -> PermanentError:
    """A binary that cannot be started: no retry will install it."""
    return PermanentError(
        f"cannot run {binary!r}: {exc.strerror or exc}", code="ffmpeg_unavailable"
    )


@dataclass(frozen=True, slots=True)
class FFmpegResult:
    argv: tuple[str, ...]
    returncode: int
    stderr: str  # the last STDERR_LIMIT bytes, decoded
    elapsed_s: float
    stdout: bytes = b""  # the last STDOUT_LIMIT bytes, when captured

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        return _tail_lines(self.stderr, lines)


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


# -- spawning and killing -------------------------------------------------------------------------


@functools.cache
def _prctl() -> Callable[..., int] | None:
    # Resolved in the parent: the child between fork and exec should do as little as possible.
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _in_child(limits: ResourceLimits, timeout_s: float) -> Callable[[], None]:
    prctl = _prctl()
    parent = os.getpid()

    def in_child() -> None:
        limits.apply(timeout_s)
        if prctl is None:
            return
        # The signal fires when the forking *thread* exits: asyncio forks from the loop's
        # thread, which lives as long as the service does.
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return in_child


def _check(argv: Sequence[str], timeout_s: float) -> None:
    if isinstance(argv, str | bytes) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a non-empty sequence of strings, not a shell string")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")


_T = TypeVar("_T")

# What this process has running and on disk right now, for :func:`abandon`.
_LIVE_GROUPS: set[int] = set()
_LIVE_WORKDIRS: set[Path] = set()


def abandon() -> None:
    """Kill every child still running and delete every scratch dir still open, at once and
    without the event loop: for a process about to exit without unwinding (a worker whose
    graceful stop ran out of time), so neither outlives it."""
    # Called from another thread than the loop's, which may change the sets meanwhile.
    for group in _snapshot(_LIVE_GROUPS):
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    for path in _snapshot(_LIVE_WORKDIRS):
        shutil.rmtree(path, ignore_errors=True)


def _snapshot(items: set[_T]) -> list[_T]:
    for _ in range(10):
        with contextlib.suppress(RuntimeError):  # changed size during iteration
            return list(items)
    return []


async def _spawn(
    argv: Sequence[str], *, capture_stdout: bool, timeout_s: float, limits: ResourceLimits
) -> asyncio.subprocess.Process:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture_stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as a whole
            preexec_fn=_in_child(limits, timeout_s),
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ffmpeg_unavailable(argv[0], exc) from exc
    _LIVE_GROUPS.add(proc.pid)
    return proc


def _forget(proc: asyncio.subprocess.Process) -> None:
    # Once reaped its pid (its group's id) may be reused: no longer ours to kill.
    if proc.returncode is not None:
        _LIVE_GROUPS.discard(proc.pid)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    # Until the child is reaped its pid (= its group id) cannot be reused, so the group
    # signalled is still the child's.
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), _KILL_WAIT_S)


async def _finish_reader(task: asyncio.Task[bytes]) -> bytes:
    """After a kill the pipes close: collect what was read, but do not wait long."""
    try:
        return await asyncio.wait_for(task, 1.0)
    except Exception:
        task.cancel()
        return b""


async def _timed_out(
    proc: asyncio.subprocess.Process,
    argv: Sequence[str],
    timeout_s: float,
    stderr_task: asyncio.Task[bytes],
) -> FFmpegTimeout:
    await asyncio.shield(_kill(proc))
    text = (await _finish_reader(stderr_task)).decode("utf-8", "replace")
    return FFmpegTimeout(
        f"{Path(argv[0]).name} timed out after {timeout_s:g}s and was killed\n"
        f"{_tail_lines(text, STDERR_TAIL_LINES)}".rstrip(),
        timeout_s=timeout_s,
        stderr=text,
    )


# -- running --------------------------------------------------------------------------------------


def _observe(argv: Sequence[str], outcome: str, started: float) -> None:
    # The tool's name only (ffmpeg, ffprobe, espeak-ng): a path would split the series.
    tool = os.path.basename(argv[0]) if argv else "unknown"
    metrics.ffmpeg(tool, outcome, time.monotonic() - started)


async def run(
    argv: Sequence[str],
    timeout_s: float,
    *,
    capture_stdout: bool = False,
    limits: ResourceLimits = DEFAULT_LIMITS,
) -> FFmpegResult:
    """Run ``argv`` to completion; any exit status is returned, not raised."""
    _check(argv, timeout_s)
    started = time.monotonic()
    proc = await _spawn(argv, capture_stdout=capture_stdout, timeout_s=timeout_s, limits=limits)
    stderr_task = asyncio.create_task(_read_bounded(proc.stderr, STDERR_LIMIT))
    stdout_task = asyncio.create_task(_read_bounded(proc.stdout, STDOUT_LIMIT))
    try:
        async with asyncio.timeout(timeout_s):
            # Shielded so a timeout leaves the readers alive to collect the stderr tail.
            returncode = await proc.wait()
            stdout = await asyncio.shield(stdout_task)
            stderr = await asyncio.shield(stderr_task)
    except TimeoutError:
        stdout_task.cancel()
        _observe(argv, "timeout", started)
        raise await _timed_out(proc, argv, timeout_s, stderr_task) from None
    except BaseException:
        await asyncio.shield(_kill(proc))
        stdout_task.cancel()
        stderr_task.cancel()
        raise
    finally:
        _forget(proc)
    _observe(argv, "ok" if returncode == 0 else "error", started)
    return FFmpegResult(
        argv=tuple(argv),
        returncode=returncode,
        stderr=stderr.decode("utf-8", "replace"),
        elapsed_s=time.monotonic() - started,
        stdout=stdout,
    )


class LineStream:
    """A running child's stdout, line by line; ``result`` is set once it has exited."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.at_eof = False
        self.result: FFmpegResult | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        assert self._proc.stdout is not None
        async for line in self._proc.stdout:
            yield line.decode("utf-8", "replace")
        self.at_eof = True


@contextlib.asynccontextmanager
async def stream_lines(
    argv: Sequence[str], timeout_s: float, *, limits: ResourceLimits = DEFAULT_LIMITS
) -> AsyncIterator[LineStream]:
    """Run ``argv`` and iterate over its stdout without holding it all in memory.

    ``timeout_s`` covers the whole block, reading included. On leaving the block the
    child is waited for (killed if its output was not read to the end) and
    ``LineStream.result`` holds its exit status and stderr.
    """
    _check(argv, timeout_s)
    started = time.monotonic()
    proc = await _spawn(argv, capture_stdout=True, timeout_s=timeout_s, limits=limits)
    stderr_task = asyncio.create_task(_read_bounded(proc.stderr, STDERR_LIMIT))
    lines = LineStream(proc)
    try:
        async with asyncio.timeout(timeout_s):
            yield lines
            if not lines.at_eof:
                # Nobody reads the rest: the child would block on a full pipe forever.
                await _kill(proc)
            returncode = await proc.wait()
            stderr = await asyncio.shield(stderr_task)
    except TimeoutError:
        _observe(argv, "timeout", started)
        raise await _timed_out(proc, argv, timeout_s, stderr_task) from None
    except BaseException:
        await asyncio.shield(_kill(proc))
        stderr_task.cancel()
        raise
    finally:
        _forget(proc)
    _observe(argv, "ok" if returncode == 0 else "error", started)
    lines.result = FFmpegResult(
        argv=tuple(argv),
        returncode=returncode,
        stderr=stderr.decode("utf-8", "replace"),
        elapsed_s=time.monotonic() - started,
    )


# -- temp dirs ------------------------------------------------------------------------------------

_PID_PART: Final = re.compile(r"(\d+)-")


@contextlib.asynccontextmanager
async def temp_workdir(
    prefix: str = "tapedeck-", dir: str | os.PathLike[str] | None = None
) -> AsyncIterator[Path]:
    """A fresh temporary directory, removed on exit even on error or cancellation.

    Its name is ``{prefix}{pid}-XXXX``: if this process is killed before cleaning up,
    :func:`remove_stale_workdirs` can tell the leftover from a live process's directory.
    """
    made = await asyncio.to_thread(tempfile.mkdtemp, prefix=f"{prefix}{os.getpid()}-", dir=dir)
    path = Path(made)
    _LIVE_WORKDIRS.add(path)
    try:
        yield path
    finally:
        # Shielded: a second cancellation must not leave the directory behind.
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))
        _LIVE_WORKDIRS.discard(path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we can judge: keep the directory
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_stale_workdirs(
    prefix: str = "tapedeck-",
    older_than_s: float = 0,
    dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Delete ``{prefix}{pid}-*`` dirs that :func:`temp_workdir` left behind in a process
    that no longer runs; return the ones removed.

    Only dirs of this user, older than ``older_than_s``, whose pid is dead go. Pids are
    compared in this pid namespace: a ``dir`` shared with other containers needs an
    ``older_than_s`` longer than any job. Blocking: call it with ``asyncio.to_thread``
    from async code.
    """
    if not prefix.startswith("tapedeck-"):
        raise ValueError("only tapedeck-* temp dirs are ours to remove")
    root = Path(tempfile.gettempdir() if dir is None else dir)
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    now = time.time()
    removed: list[Path] = []
    for entry in entries:
        # A longer prefix's dirs (``tapedeck-clip-…`` under ``tapedeck-``) do not match.
        match = _PID_PART.match(entry.name, len(prefix)) if entry.name.startswith(prefix) else None
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        if now - st.st_mtime < older_than_s or _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed
