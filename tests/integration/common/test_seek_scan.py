"""The packet scan on MP3s made with ffmpeg (real ffprobe, no servers)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from services.common.ffmpeg import FFmpeg, NotMediaError
from services.common.seek_scan import packet_index
from tests.support import audio

pytestmark = pytest.mark.integration

FRAME_MS = 1152 * 1000 / audio.SAMPLE_RATE


@pytest.mark.parametrize("kind", ["cbr", "vbr"])
async def test_index_of_a_lame_mp3(kind: str, tmp_path: Path) -> None:
    mp3 = audio.make_episode(tmp_path / f"{kind}.mp3", kind, 12)
    port = FFmpeg()

    sampled = await port.packet_index(mp3)
    every = await port.packet_index(mp3, step_ms=0)

    assert sampled.times_ms[0] == 0.0 and sampled.offsets[0] > 0  # after the ID3 tag
    assert all(b - a >= 1000 - FRAME_MS for a, b in pairwise(sampled.times_ms))
    assert 11 <= len(sampled.times_ms) <= 14
    assert len(every.times_ms) > 12_000 / FRAME_MS
    assert every.offsets == sorted(every.offsets) and len(set(every.offsets)) == len(every.offsets)
    assert set(sampled.offsets) <= set(every.offsets)
    # On a fixed grid: entry i is the first packet at or after i seconds.
    for i, t in enumerate(sampled.times_ms):
        first = next(k for k, e in enumerate(every.times_ms) if e >= i * 1000)
        assert (t, sampled.offsets[i]) == (every.times_ms[first], every.offsets[first])
    assert sampled.end_ms == every.end_ms
    # LAME's encoder delay plus the decoder's 529 samples; what is heard is 12 s.
    assert sampled.skip_samples == 576 + 529
    heard_ms = sampled.end_ms - (sampled.skip_samples + sampled.discard_samples) * 1000 / 44100
    assert abs(heard_ms - 12_000) < 1
    assert await packet_index(mp3, "ffprobe", 30.0) == sampled


async def test_no_packets_is_not_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(NotMediaError) as err:
        await FFmpeg().packet_index(text)
    assert err.value.code == "not_audio"
