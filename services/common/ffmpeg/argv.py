"""Building ffmpeg and ffprobe command lines.

Command lines are argv lists, never shell strings. Every ffmpeg command gets
``-hide_banner -nostdin -nostats -y``; every http(s) input gets ``-protocol_whitelist
http,https,tcp,tls`` as an input option, so a remote playlist cannot pull in ``file:`` or
other protocols.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

import ffmpeg as ffmpeg_lib

__all__ = [
    "GLOBAL_ARGS",
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
