"""Lists for ffmpeg's concat demuxer, written so that no file name can add a directive.

Only names the merger chose itself go in (``in-000.mp4``: relative, so the demuxer's safe
mode stays on and resolves them next to the list); each is quoted per the demuxer's
rules, where a ``'`` inside quotes is written ``'\\''``.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXT = re.compile(r"[a-z0-9]{1,8}")


def quote(name: str) -> str:
    """``name`` as one quoted token of a concat list; a line break or other control
    character cannot be quoted (the list is read line by line), so it is refused."""
    if _CONTROL.search(name):
        raise ValueError("a concat list entry cannot contain control characters")
    return "'" + name.replace("'", "'\\''") + "'"


def concat_list(names: list[str]) -> str:
    if not names:
        raise ValueError("a concat list needs at least one file")
    return "ffconcat version 1.0\n" + "".join(f"file {quote(n)}\n" for n in names)


def local_name(index: int, key: str) -> str:
    """The scratch name input ``index`` is downloaded to: our own, whatever the key says
    (its extension is kept only when it is plain, as a hint for the demuxer)."""
    tail = key.rsplit("/", 1)[-1]
    ext = tail.rsplit(".", 1)[-1].lower() if "." in tail else ""
    return f"in-{index:03d}.{ext}" if _EXT.fullmatch(ext) else f"in-{index:03d}"
