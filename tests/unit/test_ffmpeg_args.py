from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_lib
import pytest

from services.common import ffmpeg as ff
from services.common.errors import PermanentError, TransientError
from services.common.ffmpeg import (
    PROTOCOL_WHITELIST,
    FFmpeg,
    FFmpegError,
    FFmpegTimeout,
    NotMediaError,
    build_argv,
    finish_argv,
    parse_probe,
    run_ffmpeg,
    temp_workdir,
)
from services.common.settings import Settings

pytestmark = pytest.mark.unit

URL = "https://media.example.com/ep/1.mp3?sig=abc&x=1"


def _settings(**env: Any) -> Settings:
    return Settings.model_validate(env)


def _input_options(argv: list[str], source: str) -> list[str]:
    """The options between the previous input (or the start) and ``-i source``."""
    i = argv.index(source)
    assert argv[i - 1] == "-i"
    start = 1
    for j in range(i - 1):
        if argv[j] == "-i":
            start = j + 2
    return argv[start : i - 1]


def test_globals_and_binary_from_settings() -> None:
    port = FFmpeg.from_settings(_settings(FFMPEG_BIN="/opt/ffmpeg/bin/ffmpeg"))
    argv = port.argv(ffmpeg_lib.input("/in.wav").output("/out.mp3", acodec="libmp3lame"))
    assert argv[0] == "/opt/ffmpeg/bin/ffmpeg"
    for flag in ("-nostdin", "-hide_banner", "-y"):
        assert argv.count(flag) == 1
    assert all(isinstance(a, str) for a in argv)
    assert argv[-1] == "/out.mp3"
    assert "-protocol_whitelist" not in argv


def test_url_input_gets_protocol_whitelist_as_input_option() -> None:
    stream = ffmpeg_lib.input(URL, ss=5).output("/tmp/out.mp3")
    argv = build_argv(stream, "ffmpeg")
    opts = _input_options(argv, URL)
    assert opts[opts.index("-protocol_whitelist") + 1] == PROTOCOL_WHITELIST
    assert "-ss" in opts
    # The URL is one argv item, untouched: no shell quoting involved.
    assert URL in argv


def test_whitelist_only_for_url_inputs_and_not_duplicated() -> None:
    local = ffmpeg_lib.input("/data/intro.mp3")
    remote = FFmpeg.input(URL)
    stream = ffmpeg_lib.concat(local, remote, v=0, a=1).output("/tmp/out.mp3")
    argv = FFmpeg().argv(stream)
    assert argv.count("-protocol_whitelist") == 1
    assert "-protocol_whitelist" not in _input_options(argv, "/data/intro.mp3")
    assert "-protocol_whitelist" in _input_options(argv, URL)
    assert finish_argv(argv) == argv  # idempotent


def test_http_url_and_uppercase_scheme() -> None:
    for url in ("http://h/a.mp3", "HTTPS://h/a.mp3"):
        argv = finish_argv(["ffmpeg", "-i", url, "-f", "null", "-"])
        assert "-protocol_whitelist" in _input_options(argv, url)


def test_raw_argv_and_shell_strings() -> None:
    port = FFmpeg(ffmpeg_bin="ffmpeg")
    argv = port.argv(["ffmpeg", "-i", "in.wav", "out.mp3"])
    assert argv[:1] == ["ffmpeg"] and "-nostdin" in argv
    with pytest.raises(TypeError):
        port.argv("ffmpeg -i in.wav out.mp3")
    with pytest.raises(TypeError):
        finish_argv("ffmpeg -i x y")


def test_local_names_cannot_look_like_options_or_protocols() -> None:
    assert ff.media_path("-evil.mp3") == os.path.abspath("-evil.mp3")
    assert ff.media_path("concat:a.mp3|b.mp3").startswith("/")
    assert ff.media_path(Path("rel/a.mp3")) == os.path.abspath("rel/a.mp3")
    assert ff.media_path(URL) == URL
    argv = FFmpeg().argv(FFmpeg.input("-x.wav").output("/o.mp3"))
    assert argv[argv.index("-i") + 1].startswith("/")
    # lavfi graphs are passed through as they are
    argv = FFmpeg().argv(FFmpeg.input("sine=d=1", f="lavfi").output("/o.wav"))
    assert "sine=d=1" in argv


def test_ffprobe_argv() -> None:
    argv = ff.ffprobe_argv(URL, "ffprobe")
    assert argv[0] == "ffprobe"
    assert argv[-2:] == ["-i", URL]
    assert argv[argv.index("-protocol_whitelist") + 1] == PROTOCOL_WHITELIST
    assert "-protocol_whitelist" not in ff.ffprobe_argv("/a.mp3")


def test_parse_probe_ignores_cover_art() -> None:
    data = {
        "format": {"format_name": "mp3", "duration": "2.0", "bit_rate": "64000", "size": "16000"},
        "streams": [
            {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}},
            {"codec_type": "audio", "codec_name": "mp3", "sample_rate": "44100", "channels": 2},
        ],
    }
    probe = parse_probe(data)
    assert probe.codec == "mp3"
    assert probe.duration_ms == 2000
    assert (probe.sample_rate, probe.channels, probe.bit_rate, probe.size_bytes) == (
        44100,
        2,
        64000,
        16000,
    )
    assert probe.has_video is False

    streams: list[dict[str, Any]] = data["streams"]  # type: ignore[assignment]
    streams.append({"codec_type": "video", "codec_name": "h264", "disposition": {}})
    assert parse_probe(data).has_video is True


def test_parse_probe_without_audio() -> None:
    with pytest.raises(NotMediaError) as err:
        parse_probe({"format": {}, "streams": [{"codec_type": "video"}]})
    assert err.value.code == "not_audio"


async def test_failing_ffmpeg_maps_to_permanent_error() -> None:
    with pytest.raises(FFmpegError) as err:
        await run_ffmpeg(["ffmpeg", "-i", "/nonexistent"], timeout_s=30)
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
        await run_ffmpeg("ffmpeg -i /nonexistent", timeout_s=5)


class Spawned(list[asyncio.subprocess.Process]):
    """Every process the ffmpeg module started; ``started`` is set at the first one."""

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
        proc = await real(*args, **kwargs)
        procs.append(proc)
        procs.started.set()
        return proc

    monkeypatch.setattr(ff.asyncio, "create_subprocess_exec", spy)
    return procs


def _endless() -> Any:
    return FFmpeg.input("sine=frequency=440", f="lavfi", re=None).output("-", f="null")


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


async def test_stderr_is_bounded() -> None:
    reader = asyncio.StreamReader()
    data = b"".join(b"line %06d\n" % i for i in range(30_000))  # ~330 KiB
    reader.feed_data(data)
    reader.feed_eof()
    kept = await ff._read_bounded(reader, ff.STDERR_LIMIT)
    assert kept == data[-ff.STDERR_LIMIT :]


async def test_error_message_keeps_only_the_tail() -> None:
    noisy = "\n".join(f"line {i}" for i in range(1000))
    assert ff._tail_lines(noisy, 20).splitlines() == [f"line {i}" for i in range(980, 1000)]


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
