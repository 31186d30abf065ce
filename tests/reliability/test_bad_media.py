"""Bad media through the merger, the stage that takes the widest range of files, on the
real media store and ffmpeg: truncated and corrupt files, files that claim a type they
are not (a playlist or a concat script named .mp4), no video or no audio stream, an
extreme duration (a tiny file that decodes to hours), hundreds of streams. Each ends in a
clean ``merge.failed`` with its code, no ffmpeg left running and nothing left in the
scratch directory; ffmpeg is killed at its timeout and refused past its memory limit.

The inputs are made with ffmpeg's lavfi sources at test time, each a few kilobytes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from schemas import TOPICS
from schemas.codes import Code
from schemas.merge import MergeFailed
from schemas.names import Stage
from services.common.codec import Codec, RawMessage
from services.common.ffmpeg import runner
from services.common.ffmpeg.argv import finish_argv
from services.common.media_store import MediaStore
from services.common.retry import RetryPolicy
from services.common.settings import Settings
from services.common.stage import Outcome, StageRunner
from services.merger.handler import MergeConfig, MergeHandler, merge_failed
from services.merger.sources import Limits
from services.merger.tools import FFmpegTools
from tests.integration.merger.conftest import merge_request, put
from tests.support.fakes import MemoryCheckpoints, MemoryEmitter, MemoryLedger


@pytest.fixture(autouse=True)
def _no_faults_left() -> None:
    """Replaces the fault rig's fixture of this name: no fault is injected here."""


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-y", *args], check=True,
                   timeout=60)  # fmt: skip


def video(path: Path, seconds: float = 1, *, audio: bool = True, size: str = "160x120") -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=10:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *(["-c:a", "aac"] if audio else []), "-shortest", str(path))  # fmt: skip
    return path


def truncated(d: Path) -> Path:
    whole = video(d / "whole.mp4", 2).read_bytes()
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    return d / "truncated.mp4"


def corrupt(d: Path) -> Path:
    data = bytearray(video(d / "whole2.mp4", 2).read_bytes())
    data[: min(len(data), 4096)] = os.urandom(min(len(data), 4096))
    (d / "corrupt.mp4").write_bytes(bytes(data))
    return d / "corrupt.mp4"


def playlist(d: Path) -> Path:
    """An HLS playlist named .mp4 whose one segment is a file of this machine."""
    secret = d / "secret.ts"
    video(d / "secret-src.mp4", 1)
    ffmpeg("-i", str(d / "secret-src.mp4"), "-c", "copy", "-f", "mpegts", str(secret))
    text = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile://{secret}\n#EXT-X-ENDLIST\n"
    (d / "playlist.mp4").write_text(text)
    return d / "playlist.mp4"


def concat_script(d: Path) -> Path:
    (d / "script.mp4").write_text("ffconcat version 1.0\nfile '/etc/passwd'\n")
    return d / "script.mp4"


def image(d: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "color=size=64x64", "-frames:v", "1", "-f", "image2",
           str(d / "still.png"))  # fmt: skip
    os.replace(d / "still.png", d / "still.mp4")
    return d / "still.mp4"


def audio_only(d: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(d / "sound.mp4"))
    return d / "sound.mp4"


def hours_long(d: Path) -> Path:
    """Ten frames of one hour each: a few kilobytes that decode to ten hours."""
    ffmpeg("-f", "lavfi", "-i", "color=size=64x64:rate=1/3600", "-t", "36000",
           "-c:v", "libx264", "-preset", "ultrafast", str(d / "hours.mp4"))  # fmt: skip
    return d / "hours.mp4"


def many_streams(d: Path, count: int = 300) -> Path:
    maps = [arg for _ in range(count) for arg in ("-map", "0:a")]
    # Matroska with PCM: quick to write, and a container that takes any number of tracks.
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5:sample_rate=8000", *maps,
           "-c:a", "pcm_s16le", str(d / "streams.mkv"))  # fmt: skip
    return d / "streams.mkv"


Maker = Callable[[Path], Path]
# (name, how the bad input is made, operation, the inputs in order with "bad" for it, code)
CASES: list[tuple[str, Maker, str, list[str], str | None]] = [
    ("truncated", truncated, "concat_video", ["ok", "bad"], Code.INPUT_NOT_MEDIA),
    ("corrupt header", corrupt, "concat_video", ["ok", "bad"], Code.INPUT_NOT_MEDIA),
    ("HLS playlist named .mp4", playlist, "concat_video", ["ok", "bad"], Code.INPUT_NOT_MEDIA),
    ("concat script named .mp4", concat_script, "concat_video", ["ok", "bad"],
     Code.INPUT_NOT_MEDIA),
    ("still image named .mp4", image, "concat_video", ["ok", "bad"], Code.INPUT_NOT_MEDIA),
    ("no video stream", audio_only, "concat_video", ["ok", "bad"], Code.INPUT_NO_VIDEO),
    ("no audio stream", lambda d: video(d / "silent.mp4", audio=False), "mux", ["ok", "bad"],
     Code.INPUT_NO_AUDIO),
    ("ten hours in kilobytes", hours_long, "concat_video", ["ok", "bad"], Code.INPUT_TOO_LONG),
    # Not bad as such: the first sound is used, the other 299 streams are not read.
    ("300 streams", many_streams, "mux", ["ok", "bad"], None),
]  # fmt: skip


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[MediaStore]:
    async with MediaStore.from_settings(settings) as media:
        await media.ensure_bucket()
        try:
            yield media
        finally:
            await media.delete_prefix("")


def ffmpeg_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if comm in ("ffmpeg", "ffprobe") and int(rest.split()[1]) == me and rest[0] != "Z":
            found.append(int(entry))
    return found


def runner_for(handler: MergeHandler) -> tuple[StageRunner, MemoryEmitter]:
    emitter = MemoryEmitter()
    runner_ = StageRunner(
        stage=Stage.MERGE, codec=Codec.for_topic(TOPICS.merge_requests, 1 << 20),
        handler=handler, on_failure=merge_failed, emitter=emitter, dead_letters=emitter,
        ledger=MemoryLedger(), checkpoints=MemoryCheckpoints(),
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.0, max_delay_s=0.0),
    )  # fmt: skip
    return runner_, emitter


async def merge(handler: MergeHandler, operation: str, inputs: list[str],
                **params: Any) -> tuple[Outcome, list[Any]]:  # fmt: skip
    runner_, emitter = runner_for(handler)
    event = merge_request(operation, inputs, "out/never.mp4", step="s", **params)
    msg = RawMessage(topic=TOPICS.merge_requests.name, value=event.model_dump_json().encode(),
                     key=event.job_id.encode())  # fmt: skip
    outcome = await runner_.process(msg)
    return outcome, list(emitter.events)


async def merge_fails(handler: MergeHandler, operation: str, inputs: list[str]) -> MergeFailed:
    outcome, emitted = await merge(handler, operation, inputs)
    (failed,) = emitted
    assert outcome is Outcome.FAILED and isinstance(failed, MergeFailed), emitted
    return failed


@pytest.mark.parametrize(("name", "make", "operation", "order", "code"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
async def test_bad_media_ends_in_merge_failed_with_its_code(
    store: MediaStore, tmp_path: Path, name: str, make: Maker, operation: str,
    order: list[str], code: str | None,
) -> None:  # fmt: skip
    made = tmp_path / "made"
    made.mkdir()
    bad = await asyncio.to_thread(make, made)
    ok = await asyncio.to_thread(video, made / "ok.mp4", 1)
    await put(store, {"in/ok.mp4": ok, "in/bad.mp4": bad})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    handler = MergeHandler(media=store, tools=FFmpegTools(workdir_root=scratch),
                           config=MergeConfig(Limits(20, 3_600_000)))  # fmt: skip
    outcome, emitted = await merge(handler, operation, [f"in/{k}.mp4" for k in order])
    if code is None:
        assert outcome is Outcome.DONE and await store.head("out/never.mp4") is not None
    else:
        (failed,) = emitted
        assert isinstance(failed, MergeFailed) and outcome is Outcome.FAILED, emitted
        assert failed.error.code == code, (name, failed.error)
        assert failed.error.message and "in/" not in failed.error.message, failed.error
        assert "/" not in failed.error.message, failed.error  # no paths of ours
        assert await store.head("out/never.mp4") is None
    assert list(scratch.iterdir()) == [], "scratch files left behind"
    assert ffmpeg_children() == []


async def test_a_run_past_its_timeout_is_killed_and_fails_with_a_code(
    store: MediaStore, tmp_path: Path
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    big = await asyncio.to_thread(video, made / "a.mp4", 10)
    small = await asyncio.to_thread(video, made / "b.mp4", 10, size="1280x720")
    await put(store, {"in/a.mp4": big, "in/b.mp4": small})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # Differing sizes: a normalising concat, which takes seconds; it may take 0.5.
    config = MergeConfig(Limits(20, 3_600_000), timeout_factor=0.001, timeout_min_s=0.5)
    handler = MergeHandler(media=store, tools=FFmpegTools(workdir_root=scratch), config=config)
    failed = await merge_fails(handler, "concat_video", ["in/a.mp4", "in/b.mp4"])
    assert failed.error.code, failed.error
    assert failed.error.code == Code.TRANSIENT_EXHAUSTED, failed.error
    assert failed.error.attempts == 2
    assert list(scratch.iterdir()) == [], "scratch files left behind"
    assert ffmpeg_children() == []


async def test_ffmpeg_is_refused_memory_past_its_limit() -> None:
    # A 12000x12000 frame of 16-bit RGBA is over a gigabyte: it cannot be had within one.
    argv = finish_argv(["ffmpeg", "-f", "lavfi", "-i",
                        "color=size=12000x12000:duration=0.1:rate=10", "-vf", "format=rgba64le",
                        "-f", "null", "-"])  # fmt: skip
    limited = runner.ResourceLimits(memory_bytes=1024**3)
    done = await runner.run(argv, 60, limits=limited)
    assert done.returncode != 0
    assert "Cannot allocate memory" in done.stderr, done.stderr_tail()
    assert ffmpeg_children() == []


async def test_ffmpeg_is_killed_by_the_kernel_past_its_cpu_limit() -> None:
    # Three CPU seconds for a 60 s timeout: the kernel's limit, not our timer, ends it.
    argv = finish_argv(["ffmpeg", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                        "-c:v", "libx264", "-preset", "slow", "-f", "null", "-"])  # fmt: skip
    limited = runner.ResourceLimits(cpu_per_wall_s=2 / 60)
    done = await runner.run(argv, 60, limits=limited)
    # SIGXCPU at the soft limit (ffmpeg stops on it, exit 255), SIGKILL at the hard one.
    assert done.returncode in (255, -signal.SIGXCPU, -signal.SIGKILL), done.returncode
    assert done.elapsed_s < 30, done.elapsed_s
    assert ffmpeg_children() == []
