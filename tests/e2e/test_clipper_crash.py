"""A clipper killed mid-cut (``kill -9``) leaves nothing running, and after a restart its
scratch directory is cleared and the redelivered request is served exactly once.

The clipper runs as its own process with a private ``TMPDIR``, so every
``tapedeck-clip-*`` directory seen there is one it made. The cut is a long, re-encoded
(accurate m4a) range of a WAV episode: ffmpeg works for seconds, long enough to be caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from schemas import TOPICS, decode_event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from services.clipper.cutter import CUT_WORKDIR_PREFIX
from services.common.clips import AUDIO_CLIPS
from services.common.episodes import EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.kafka import ensure_topics
from services.common.keys import AUDIO_CLIPS_PREFIX, clip_key
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.registration import register_file
from services.common.settings import Settings
from tests.support.kafka import produce, read
from tests.support.services import start_service, stop_service

T = TypeVar("T")

TENANT = "crash"
EPISODE = "ep-crash"
EPISODE_S = 320
START_MS = 10_000
# Re-encoding five minutes to AAC keeps ffmpeg busy for several seconds (~7 s on 2 slow
# cores): an ffmpeg that outlived the clipper would still be running at DIES_WITHIN_S.
DURATION_MS = 300_000
# PR_SET_PDEATHSIG kills at once; this only allows for a slow poll on a busy machine.
DIES_WITHIN_S = 3
ENV = {
    # Faust reads these itself. Kafka keeps a kill -9'd member in the group until its
    # session times out (Faust's default: 60 s); 6 s is the broker's minimum.
    "BROKER_SESSION_TIMEOUT": "6",
    "BROKER_HEARTBEAT_INTERVAL": "1",
    "CLIPPER_CONCURRENCY": "1",
}


# -- processes, as /proc shows them ---------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    state: str
    ppid: int
    pgrp: int
    starttime: int  # with the pid, tells this process from a later one reusing the pid


def _stat(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22nd)"; comm may
    # hold spaces and parentheses, so split after its last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return Proc(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def _processes() -> Iterator[Proc]:
    for name in os.listdir("/proc"):
        if name.isdigit() and (proc := _stat(int(name))) is not None:
            yield proc


def _program(pid: int) -> str:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return ""
    return Path(argv0.decode("utf-8", "replace")).name


def _running(proc: Proc) -> bool:
    """Still this very process and not a zombie (PID 1 here may never reap an orphan)."""
    now = _stat(proc.pid)
    return now is not None and now.starttime == proc.starttime and now.state != "Z"


def _ffmpeg_children(parent: int) -> list[Proc]:
    return [
        p
        for p in _processes()
        if p.ppid == parent and p.state != "Z" and _program(p.pid) == "ffmpeg"
    ]


def _in_groups(pgrps: set[int]) -> list[Proc]:
    return [p for p in _processes() if p.pgrp in pgrps and p.state != "Z"]


def _workdirs(tmpdir: Path) -> list[Path]:
    return sorted(tmpdir.glob(f"{CUT_WORKDIR_PREFIX}*"))


async def _until(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after the
    deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.05)


def _alive_or_fail(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"clipper exited with {proc.returncode}; log in {log}")


def _long_wav(path: Path, seconds: int) -> Path:
    # A plain tone: lavfi makes minutes of it in a fraction of a second (the changing
    # tones of tests.support.audio take ~30x longer). WAV has no seek index: the cutter
    # hands ffmpeg a presigned URL and ffmpeg decodes and re-encodes the whole range.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
         "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


# -- the test -------------------------------------------------------------------------------------


async def test_killed_cut_leaves_nothing_behind_and_completes_after_restart(
    settings: Settings, tmp_path: Path
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**ENV, "TMPDIR": str(tmpdir)}
    logs = [tmp_path / "clipper-1.log", tmp_path / "clipper-2.log"]
    started: list[subprocess.Popen[bytes]] = []
    caught: list[Proc] = []
    mongo = connect(settings)
    db = database(mongo, settings)
    try:
        await ensure_topics(settings)
        # Started first: it gets ready while the episode is made and registered.
        first = start_service("services.clipper", settings, logs[0], **env)
        started.append(first)

        async with MediaStore.from_settings(settings) as media:
            await register_file(
                _long_wav(tmp_path / "ep.wav", EPISODE_S), episode_id=EPISODE, tenant_id=TENANT,
                filename="ep.wav", store=EpisodeStore(db), media=media,
                ffmpeg=FFmpeg.from_settings(settings),
            )  # fmt: skip
        request = ClipRequested(
            request_id="crash-1", tenant_id=TENANT, producer="tests", episode_id=EPISODE,
            start_ms=START_MS, duration_ms=DURATION_MS, format="m4a", accurate=True,
        )  # fmt: skip
        await produce(
            settings,
            TOPICS.clip_requests.full_name(settings.topic_prefix),
            [request.model_dump_json().encode()],
            key=request.request_id.encode(),
        )

        # Mid-cut: ffmpeg runs as the clipper's child, in the scratch dir it made.
        def cutting() -> tuple[list[Proc], list[Path]] | None:
            _alive_or_fail(first, logs[0])
            children, dirs = _ffmpeg_children(first.pid), _workdirs(tmpdir)
            return (children, dirs) if children and dirs else None

        children, dirs = await _until(cutting, 60, "the clipper runs ffmpeg in a work dir")
        caught.extend(children)
        assert len(dirs) == 1 and dirs[0].name.startswith(f"{CUT_WORKDIR_PREFIX}{first.pid}-")
        stale = dirs[0]

        os.kill(first.pid, signal.SIGKILL)
        # Reaped by us, its parent: an unreaped (zombie) pid would count as alive for the
        # restarted clipper's stale-dir check.
        assert first.wait(timeout=10) == -signal.SIGKILL

        # ffmpeg died with it (PR_SET_PDEATHSIG), its whole process group too.
        groups = {p.pgrp for p in children}
        await _until(
            lambda: not any(_running(p) for p in children) and not _in_groups(groups),
            DIES_WITHIN_S,
            f"ffmpeg {[p.pid for p in children]} (groups {sorted(groups)}) dies with the clipper",
        )
        # Nobody has cleaned up yet: the killed cut's scratch dir is still there.
        assert _workdirs(tmpdir) == [stale]

        second = start_service("services.clipper", settings, logs[1], **env)
        started.append(second)

        def stale_gone() -> bool:
            _alive_or_fail(second, logs[1])
            return not stale.exists()

        await _until(stale_gone, 30, f"the restarted clipper removes {stale.name}")

        results = await read(
            settings,
            TOPICS.clip_results.full_name(settings.topic_prefix),
            1,
            timeout_s=90,
            settle_s=2.0,
        )
        _alive_or_fail(second, logs[1])
        answers = [
            e
            for e in (decode_event(r.value) for r in results if r.value)
            if isinstance(e, ClipReady | ClipFailed) and e.request_id == request.request_id
        ]
        assert len(answers) == 1 and isinstance(answers[0], ClipReady), (answers, logs)
        ready = answers[0]
        key = clip_key(TENANT, EPISODE, START_MS, START_MS + DURATION_MS, "m4a", accurate=True)
        assert ready.s3_key == key and ready.cache_hit is False

        async with MediaStore.from_settings(settings) as media:
            assert await media.list_keys(f"{AUDIO_CLIPS_PREFIX}{TENANT}/{EPISODE}/") == [key]
            info = await media.head(key)
        assert info is not None and info.size == ready.size_bytes
        docs = await db[AUDIO_CLIPS].find({"tenant_id": TENANT, "episode_id": EPISODE}).to_list()
        assert [d["s3_key"] for d in docs] == [key]
        # The redone cut cleaned up after itself as well.
        assert _workdirs(tmpdir) == []

        stop_service(second)
    finally:
        for proc in started:
            stop_service(proc)
        for child in caught:
            if _running(child):  # only if PR_SET_PDEATHSIG failed us: never leave it behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pgrp, signal.SIGKILL)
        await mongo.close()
