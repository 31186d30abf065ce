from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_lib
import pytest

from services.common.ffmpeg import FFmpeg
from services.common.ffmpeg.argv import (
    INPUT_FORMATS,
    LOCAL_PROTOCOLS,
    PROTOCOL_WHITELIST,
    build_argv,
    ffprobe_argv,
    finish_argv,
    media_path,
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
    opts = _input_options(argv, "/in.wav")
    assert opts[opts.index("-protocol_whitelist") + 1] == LOCAL_PROTOCOLS


def test_url_input_gets_protocol_whitelist_as_input_option() -> None:
    stream = ffmpeg_lib.input(URL, ss=5).output("/tmp/out.mp3")
    argv = build_argv(stream, "ffmpeg")
    opts = _input_options(argv, URL)
    assert opts[opts.index("-protocol_whitelist") + 1] == PROTOCOL_WHITELIST
    assert "-ss" in opts
    # The URL is one argv item, untouched: no shell quoting involved.
    assert URL in argv


def test_network_protocols_only_for_url_inputs_and_not_duplicated() -> None:
    local = ffmpeg_lib.input("/data/intro.mp3")
    remote = FFmpeg.input(URL)
    stream = ffmpeg_lib.concat(local, remote, v=0, a=1).output("/tmp/out.mp3")
    argv = FFmpeg().argv(stream)
    assert argv.count("-protocol_whitelist") == 2
    local_opts = _input_options(argv, "/data/intro.mp3")
    assert local_opts[local_opts.index("-protocol_whitelist") + 1] == LOCAL_PROTOCOLS
    remote_opts = _input_options(argv, URL)
    assert remote_opts[remote_opts.index("-protocol_whitelist") + 1] == PROTOCOL_WHITELIST
    assert finish_argv(argv) == argv  # idempotent


def test_every_input_may_only_be_read_as_media_we_take() -> None:
    argv = finish_argv(["ffmpeg", "-i", "/a.mp4", "-f", "concat", "-i", "/list.txt",
                        "-f", "lavfi", "-i", "sine=d=1", "-f", "mp4", "/out.mp4"])  # fmt: skip
    ours = ",".join(INPUT_FORMATS)
    plain, listing, graph = (_input_options(argv, s) for s in ("/a.mp4", "/list.txt", "sine=d=1"))
    assert plain[plain.index("-format_whitelist") + 1] == ours
    # A forced demuxer is allowed for that input; what it opens is held to the rest.
    assert listing[listing.index("-format_whitelist") + 1] == ours + ",concat"
    assert graph[graph.index("-format_whitelist") + 1] == ours + ",lavfi"
    # A filter graph opens no protocol of its own.
    assert "-protocol_whitelist" not in graph
    assert "hls" not in ours and "concat" not in ours
    assert finish_argv(argv) == argv


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
    assert media_path("-evil.mp3") == os.path.abspath("-evil.mp3")
    assert media_path("concat:a.mp3|b.mp3").startswith("/")
    assert media_path(Path("rel/a.mp3")) == os.path.abspath("rel/a.mp3")
    assert media_path(URL) == URL
    argv = FFmpeg().argv(FFmpeg.input("-x.wav").output("/o.mp3"))
    assert argv[argv.index("-i") + 1].startswith("/")
    # lavfi graphs are passed through as they are
    argv = FFmpeg().argv(FFmpeg.input("sine=d=1", f="lavfi").output("/o.wav"))
    assert "sine=d=1" in argv


def test_ffprobe_argv() -> None:
    argv = ffprobe_argv(URL, "ffprobe")
    assert argv[0] == "ffprobe"
    assert argv[-2:] == ["-i", URL]
    assert argv[argv.index("-protocol_whitelist") + 1] == PROTOCOL_WHITELIST
    local = ffprobe_argv("/a.mp3")
    assert local[local.index("-protocol_whitelist") + 1] == LOCAL_PROTOCOLS
    assert local[local.index("-format_whitelist") + 1] == ",".join(INPUT_FORMATS)
