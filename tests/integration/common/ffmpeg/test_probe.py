from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.common.ffmpeg import FFmpeg, NotMediaError, temp_workdir
from services.common.settings import Settings

if TYPE_CHECKING:
    from tests.integration.common.ffmpeg.conftest import MakeSine

pytestmark = pytest.mark.integration


async def test_probe_reads_what_ffmpeg_made(make_sine_mp3: MakeSine) -> None:
    port = FFmpeg.from_settings(Settings())
    async with temp_workdir() as work:
        mp3 = work / "tone.mp3"
        await make_sine_mp3(port, mp3, 2.0)
        probe = await port.probe(mp3)
        assert probe.codec == "mp3"
        assert probe.format_name == "mp3"
        assert probe.duration_ms is not None and abs(probe.duration_ms - 2000) <= 50
        assert probe.sample_rate == 44100
        assert probe.channels == 1
        assert probe.has_video is False
        assert probe.size_bytes == mp3.stat().st_size
        assert probe.bit_rate is not None and 50_000 < probe.bit_rate < 80_000
        assert await port.probe(mp3, timeout_s=30) == probe
    assert not work.exists()


async def test_probe_text_file_is_not_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(NotMediaError) as err:
        await FFmpeg.from_settings(Settings()).probe(text)
    assert err.value.code == "not_audio"
    with pytest.raises(NotMediaError):
        await FFmpeg().probe(tmp_path / "missing.mp3")


async def test_probe_video_only_is_not_audio(tmp_path: Path) -> None:
    port = FFmpeg()
    video = tmp_path / "bars.mp4"
    await port.run(
        FFmpeg.input("testsrc=size=64x64:rate=10:duration=1", f="lavfi").output(str(video)),
        timeout_s=30,
    )
    with pytest.raises(NotMediaError):
        await port.probe(video)


async def test_probe_cover_art_is_not_video(tmp_path: Path, make_sine_mp3: MakeSine) -> None:
    port = FFmpeg()
    mp3 = tmp_path / "tone.mp3"
    cover = tmp_path / "cover.png"
    tagged = tmp_path / "tagged.mp3"
    await make_sine_mp3(port, mp3, 1.0)
    await port.run(
        FFmpeg.input("color=c=red:size=32x32", f="lavfi").output(str(cover), vframes=1),
        timeout_s=30,
    )
    await port.run(
        [
            "ffmpeg",
            "-i",
            str(mp3),
            # Images are outside the input whitelist unless forced, as here.
            "-f",
            "png_pipe",
            "-i",
            str(cover),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c",
            "copy",
            "-disposition:v",
            "attached_pic",
            "-id3v2_version",
            "3",
            str(tagged),
        ],
        timeout_s=30,
    )
    probe = await port.probe(tagged)
    assert probe.codec == "mp3"
    assert probe.has_video is False
