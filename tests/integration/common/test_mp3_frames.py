"""The in-process MP3 frame parser against ffprobe's packet list, on files made with
ffmpeg (no servers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.common.mp3_frames import iter_frames, parse_info_tag
from tests.support import audio

pytestmark = pytest.mark.integration


def ffprobe_positions(path: Path) -> list[int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pos",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [int(line.strip().rstrip(",")) for line in out.split()]


@pytest.mark.parametrize("kind", ["cbr", "vbr"])
async def test_frames_start_where_ffprobe_says(kind: str, tmp_path: Path) -> None:
    # cbr: ID3v2 tags and a PNG cover before the first frame.
    path = audio.make_episode(tmp_path / f"{kind}.mp3", kind, 30)
    data = path.read_bytes()
    frames = list(iter_frames(data))
    (tag_at, tag_h), audio_frames = frames[0], frames[1:]
    # ffprobe reads the Xing/LAME frame as the file's header, not as a packet.
    tag = parse_info_tag(data[tag_at : tag_at + tag_h.size], tag_h)
    assert tag is not None and tag.frames == len(audio_frames)
    assert [o for o, _ in audio_frames] == ffprobe_positions(path)
