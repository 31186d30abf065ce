from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import PermanentError, TransientError
from services.common.ffmpeg import FFmpeg, FFmpegError, FFmpegTimeout, runner, temp_workdir
from services.common.ffmpeg.runner import remove_stale_workdirs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]


async def test_failing_ffmpeg_maps_to_permanent_error() -> None:
    with pytest.raises(FFmpegError) as err:
        await FFmpeg().run(["ffmpeg", "-i", "/nonexistent"], timeout_s=30)
    assert isinstance(err.value, PermanentError)
    assert err.value.code == "ffmpeg_failed"
    assert err.value.returncode not in (None, 0)
    assert "/nonexistent" in str(err.value)
    assert "No such file or directory" in str(err.value)


async def test_missing_binary_is_permanent() -> None:
    port = FFmpeg(ffmpeg_bin="/nonexistent/ffmpeg", ffprobe_bin="/nonexistent/ffprobe")
    with pytest.raises(PermanentError) as err:
        await port.run(["/nonexistent/ffmpeg", "-version"])
    assert err.value.code == "ffmpeg_unavailable"
    with pytest.raises(PermanentError) as err:
        await port.probe("/tmp/a.mp3")
    assert err.value.code == "ffmpeg_unavailable"


async def test_run_rejects_shell_string() -> None:
    with pytest.raises(TypeError):
        await FFmpeg().run("ffmpeg -i /nonexistent", timeout_s=5)
    with pytest.raises(TypeError):
        await runner.run("ffmpeg -i /nonexistent", timeout_s=5)
    with pytest.raises(TypeError):
        async with runner.stream_lines("ffprobe /nonexistent", timeout_s=5):
            pass


class Spawned(list[asyncio.subprocess.Process]):
    """Every process the runner started; ``started`` is set at the first one."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Spawned:
    procs = Spawned()
    real = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        assert "shell" not in kwargs
        assert kwargs.get("stdin") == asyncio.subprocess.DEVNULL
        assert kwargs.get("start_new_session") is True
        proc = await real(*args, **kwargs)
        procs.append(proc)
        procs.started.set()
        return proc

    monkeypatch.setattr(runner.asyncio, "create_subprocess_exec", spy)
    return procs


def _endless() -> Any:
    return FFmpeg.input("sine=frequency=440", f="lavfi", re=None).output("-", f="null")


def _script(tmp_path: Path, body: str, name: str = "child.sh") -> Path:
    script = tmp_path / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone while being read: ESRCH
        return True
    # Killed but not yet reaped by whoever adopted it: dead all the same.
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _eventually_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        await asyncio.sleep(0.05)
    return _gone(pid)


def _pid_in(pidfile: Path) -> str:
    return pidfile.read_text().strip() if pidfile.exists() else ""


async def _read_pid(pidfile: Path, within_s: float = 10.0) -> int:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        text = _pid_in(pidfile)  # a few bytes on a local disk: not worth a thread
        if text.isdigit():
            return int(text)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no pid in {pidfile}")


async def test_timeout_kills_ffmpeg(spawned: Spawned) -> None:
    started = time.monotonic()
    with pytest.raises(FFmpegTimeout) as err:
        await FFmpeg().run(_endless(), timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert isinstance(err.value, TransientError)
    assert err.value.timeout_s == 0.5
    assert len(spawned) == 1
    assert spawned[0].returncode is not None  # killed and reaped


async def test_cancellation_kills_ffmpeg(spawned: Spawned) -> None:
    task = asyncio.create_task(FFmpeg().run(_endless(), timeout_s=60))
    await asyncio.wait_for(spawned.started.wait(), 10)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert spawned[0].returncode is not None


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    # The grandchild is not the runner's child: only the process-group kill reaches it.
    pidfile = tmp_path / "grandchild.pid"
    script = _script(tmp_path, 'sleep 30 &\necho $! > "$1"\nwait\n')
    with pytest.raises(FFmpegTimeout):
        await runner.run([str(script), str(pidfile)], timeout_s=0.5)
    grandchild = await _read_pid(pidfile)
    try:
        assert await _eventually_gone(grandchild)
    finally:
        if not _gone(grandchild):
            os.kill(grandchild, signal.SIGKILL)


async def test_abandon_kills_what_runs_and_deletes_what_is_open(tmp_path: Path) -> None:
    """What a worker calls before exiting without unwinding (its stop ran out of time)."""
    pidfile = tmp_path / "child.pid"
    script = _script(tmp_path, 'echo $$ > "$1"\nexec sleep 30\n')
    async with temp_workdir("tapedeck-test-", dir=tmp_path) as work:
        (work / "part.wav").write_bytes(b"RIFF")
        task = asyncio.create_task(runner.run([str(script), str(pidfile)], timeout_s=60))
        child = await _read_pid(pidfile)
        # The child can write its pid before the spawn has returned and registered it
        # (a loaded machine): abandon kills what is registered, so wait for that.
        for _ in range(1000):
            if child in runner._LIVE_GROUPS:
                break
            await asyncio.sleep(0.01)
        assert child in runner._LIVE_GROUPS
        runner.abandon()  # as from another thread: no awaiting
        assert not work.exists()
        assert await _eventually_gone(child)
        done = await asyncio.wait_for(task, 10)
        assert done.returncode == -signal.SIGKILL
    # Reaped, so forgotten: a later abandon cannot hit a reused pid.
    assert child not in runner._LIVE_GROUPS


PARENT = """
import asyncio, sys
from services.common.ffmpeg import runner

async def main(mode, *argv):
    if mode == "run":
        await runner.run(argv, 60)
    else:
        async with runner.stream_lines(argv, 60) as lines:
            async for _ in lines:
                pass

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
@pytest.mark.parametrize("mode", ["run", "stream_lines"])
async def test_child_dies_when_its_parent_is_killed(mode: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = _script(tmp_path, 'echo $$ > "$1"\nexec sleep 30\n')
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, mode, str(script), str(pidfile), cwd=ROOT
    )
    child = None
    try:
        child = await _read_pid(pidfile)
        assert not _gone(child)
        parent.send_signal(signal.SIGKILL)  # no cleanup code of the parent runs
        await parent.wait()
        assert await _eventually_gone(child), "the child outlived its SIGKILLed parent"
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        if child is not None and not _gone(child):
            os.kill(child, signal.SIGKILL)


async def test_stream_lines_reads_output_and_exit_status() -> None:
    argv = ["sh", "-c", "printf 'a\\nb\\n'; echo oops >&2; exit 3"]
    async with runner.stream_lines(argv, timeout_s=10) as lines:
        seen = [line async for line in lines]
    assert seen == ["a\n", "b\n"]
    assert lines.result is not None
    assert lines.result.returncode == 3
    assert "oops" in lines.result.stderr


async def test_stream_lines_left_early_kills_the_child(spawned: Spawned) -> None:
    async with runner.stream_lines(["yes"], timeout_s=10) as lines:
        async for _ in lines:
            break
    assert lines.result is not None
    assert lines.result.returncode == -signal.SIGKILL
    assert spawned[0].returncode is not None


async def test_stream_lines_timeout_and_error_kill_the_child(spawned: Spawned) -> None:
    with pytest.raises(FFmpegTimeout) as err:
        async with runner.stream_lines(["sleep", "30"], timeout_s=0.3) as lines:
            async for _ in lines:
                pass
    assert err.value.timeout_s == 0.3
    assert spawned[-1].returncode is not None
    with pytest.raises(RuntimeError):
        async with runner.stream_lines(["yes"], timeout_s=10) as lines:
            async for _ in lines:
                raise RuntimeError("the caller failed")
    assert spawned[-1].returncode is not None


async def test_stderr_is_bounded() -> None:
    reader = asyncio.StreamReader()
    data = b"".join(b"line %06d\n" % i for i in range(30_000))  # ~330 KiB
    reader.feed_data(data)
    reader.feed_eof()
    kept = await runner._read_bounded(reader, runner.STDERR_LIMIT)
    assert kept == data[-runner.STDERR_LIMIT :]


async def test_error_message_keeps_only_the_tail() -> None:
    noisy = "\n".join(f"line {i}" for i in range(1000))
    assert runner._tail_lines(noisy, 20).splitlines() == [f"line {i}" for i in range(980, 1000)]


async def test_temp_workdir_removed_on_error_and_cancel() -> None:
    seen: list[Path] = []
    entered = asyncio.Event()
    with pytest.raises(RuntimeError):
        async with temp_workdir() as d:
            (d / "f.bin").write_bytes(b"x")
            seen.append(d)
            raise RuntimeError("boom")
    assert not seen[-1].exists()

    async def hang() -> None:
        async with temp_workdir() as d:
            (d / "sub").mkdir()
            seen.append(d)
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(hang())
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not seen[-1].exists()


async def _exited_pid() -> int:
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    return proc.pid


async def test_remove_stale_workdirs_removes_dead_pids_dirs_only(tmp_path: Path) -> None:
    prefix = "tapedeck-test-"
    dead = await _exited_pid()
    stale = tmp_path / f"{prefix}{dead}-abcd"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "window.mp3").write_bytes(b"x")
    longer_prefix = tmp_path / f"{prefix}clip-{dead}-abcd"  # another prefix's dir
    not_ours = tmp_path / f"{prefix}notes"
    for d in (longer_prefix, not_ours):
        d.mkdir()
    sleeper = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        other_live = tmp_path / f"{prefix}{sleeper.pid}-efgh"
        other_live.mkdir()
        async with temp_workdir(prefix, dir=tmp_path) as mine:
            assert mine.name.startswith(f"{prefix}{os.getpid()}-")
            assert remove_stale_workdirs(prefix, older_than_s=3600, dir=tmp_path) == []
            assert stale.exists()

            assert remove_stale_workdirs(prefix, dir=tmp_path) == [stale]
            assert not stale.exists()
            for kept in (mine, other_live, longer_prefix, not_ours):
                assert kept.exists(), kept
    finally:
        sleeper.kill()
        await sleeper.wait()
    assert remove_stale_workdirs(prefix, dir=tmp_path / "missing") == []
    with pytest.raises(ValueError):
        remove_stale_workdirs("tmp", dir=tmp_path)
