"""Building ffmpeg and ffprobe command lines.

Command lines are argv lists, never shell strings. Every ffmpeg command gets
``-hide_banner -nostdin -nostats -y``; every http(s) input gets ``-protocol_whitelist
http,https,tcp,tls`` and every local one ``-protocol_whitelist file`` as an input option,
so a remote playlist cannot pull in ``file:`` and a local one cannot reach the network.
Every input may only be read by the demuxers of the media containers the pipeline takes
(``-format_whitelist``, plus the one an input forces with ``-f``): a file that claims to
be media but is a playlist (HLS) or a concat script is refused before it opens anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

import ffmpeg as ffmpeg_lib

__all__ = [
    "GLOBAL_ARGS",
    "INPUT_FORMATS",
    "LOCAL_PROTOCOLS",
    "PROTOCOL_WHITELIST",
    "build_argv",
    "ffprobe_argv",
    "finish_argv",
    "input_",
    "is_url",
    "media_path",
]

GLOBAL_ARGS: Final = ("-hide_banner", "-nostdin", "-nostats", "-y")
PROTOCOL_WHITELIST: Final = "http,https,tcp,tls"
LOCAL_PROTOCOLS: Final = "file"
# ffmpeg's demuxer names of the containers Tapedeck takes (the submitter's upload list,
# services/submitter/media.py, is held to it): "mov" reads MP4/MOV/M4A/3GP, "matroska"
# WebM too. Not hls, concat, image2 and the rest, which open further files or URLs.
INPUT_FORMATS: Final = (
    "mov", "matroska", "mp3", "wav", "ogg", "flac", "aac", "aiff", "mpegts", "avi", "flv",
    "mpeg",
)  # fmt: skip


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


def format_whitelist(forced: str | None = None) -> str:
    """The demuxers an input may be read with: ours, and the one it was forced to."""
    names = [*INPUT_FORMATS, *([forced] if forced and forced not in INPUT_FORMATS else [])]
    return ",".join(names)


def _input_guards(options: list[str], source: str) -> list[str]:
    """What an input with ``options`` lacks of its protocol and format whitelists."""
    forced = options[options.index("-f") + 1] if "-f" in options[:-1] else None
    guards: list[str] = []
    if "-protocol_whitelist" not in options and forced != "lavfi":
        guards += ["-protocol_whitelist", PROTOCOL_WHITELIST if is_url(source) else LOCAL_PROTOCOLS]
    if "-format_whitelist" not in options:
        guards += ["-format_whitelist", format_whitelist(forced)]
    return guards


def _with_protocol_whitelist(args: list[str]) -> list[str]:
    """Insert the protocol and format whitelists before every ``-i`` that lacks them."""
    out: list[str] = []
    options_start = 0  # index in ``out`` where the current input's options begin
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-i" and i + 1 < len(args):
            source = args[i + 1]
            out += _input_guards(out[options_start:], source)
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
    argv += ["-protocol_whitelist", PROTOCOL_WHITELIST if is_url(name) else LOCAL_PROTOCOLS]
    argv += ["-format_whitelist", format_whitelist()]
    argv += ["-print_format", "json", "-show_format", "-show_streams", "-i", name]
    return argv
