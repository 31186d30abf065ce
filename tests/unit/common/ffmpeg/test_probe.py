from __future__ import annotations

from typing import Any

import pytest

from services.common.ffmpeg.probe import parse_probe
from services.common.ffmpeg.runner import NotMediaError

pytestmark = pytest.mark.unit


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
