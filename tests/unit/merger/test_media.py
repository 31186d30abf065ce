"""Reading ffprobe's JSON into what a merge needs."""

from __future__ import annotations

from typing import Any

import pytest

from services.merger.media import Unusable, parse_media

pytestmark = pytest.mark.unit


def probe(*streams: dict[str, Any], fmt: str = "mov,mp4,m4a,3gp,3g2,mj2") -> dict[str, Any]:
    return {"format": {"format_name": fmt, "duration": "2.500000"}, "streams": list(streams)}


VIDEO = {"codec_type": "video", "codec_name": "h264", "width": 320, "height": 240,
         "r_frame_rate": "30000/1001", "time_base": "1/30000", "duration": "2.502",
         "extradata_hash": "CRC32:abcd", "profile": "High", "pix_fmt": "yuv420p"}  # fmt: skip
AUDIO = {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2,
         "channel_layout": "stereo", "duration": "2.49"}  # fmt: skip


def test_video_and_audio() -> None:
    info = parse_media(probe(VIDEO, AUDIO))
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height, info.video.frame_rate) == (320, 240, "30000/1001")
    assert info.video.extradata == "CRC32:abcd"
    assert (info.duration_ms, info.video_ms, info.audio_ms) == (2500, 2502, 2490)
    assert info.stream_types == ("video", "audio")


def test_cover_art_is_not_video() -> None:
    art = {**VIDEO, "disposition": {"attached_pic": 1}}
    info = parse_media(probe(AUDIO, art, fmt="mp3"))
    assert info.video is None and info.audio is not None
    assert info.video_ms == 2500  # falls back on the container's


@pytest.mark.parametrize(
    "data",
    [
        probe(),
        probe({"codec_type": "data"}),
        probe({**VIDEO, "codec_name": "ansi"}, fmt="tty"),
        probe(VIDEO, fmt="png_pipe"),
        probe(VIDEO, fmt="image2"),
    ],
)
def test_what_is_not_a_merge_input(data: dict[str, Any]) -> None:
    with pytest.raises(Unusable):
        parse_media(data)
