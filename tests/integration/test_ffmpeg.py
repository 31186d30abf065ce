from __future__ import annotations

from pathlib import Path

import pytest

from services.common.ffmpeg import FFmpeg, NotMediaError, ffprobe, temp_workdir
from services.common.keys import audio_key
from services.common.media_store import MediaStore
from services.common.settings import Settings

pytestmark = pytest.mark.integration


async def _make_sine_mp3(port: FFmpeg, path: Path, seconds: float = 2.0) -> None:
    stream = FFmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi").output(
        str(path), acodec="libmp3lame", ar=44100, ac=1, audio_bitrate="64k"
    )
    await port.run(stream, timeout_s=30)


async def test_probe_reads_what_ffmpeg_made() -> None:
    settings = Settings()
    port = FFmpeg.from_settings(settings)
    async with temp_workdir() as work:
        mp3 = work / "tone.mp3"
        await _make_sine_mp3(port, mp3)
        probe = await ffprobe(mp3, settings)
        assert probe.codec == "mp3"
        assert probe.format_name == "mp3"
        assert probe.duration_ms is not None and abs(probe.duration_ms - 2000) <= 50
        assert probe.sample_rate == 44100
        assert probe.channels == 1
        assert probe.has_video is False
        assert probe.size_bytes == mp3.stat().st_size
        assert probe.bit_rate is not None and 50_000 < probe.bit_rate < 80_000
        assert await port.probe(mp3) == probe
    assert not work.exists()


async def test_probe_text_file_is_not_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(NotMediaError) as err:
        await ffprobe(text, Settings())
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


async def test_probe_cover_art_is_not_video(tmp_path: Path) -> None:
    port = FFmpeg()
    mp3 = tmp_path / "tone.mp3"
    cover = tmp_path / "cover.png"
    tagged = tmp_path / "tagged.mp3"
    await _make_sine_mp3(port, mp3, 1.0)
    await port.run(
        FFmpeg.input("color=c=red:size=32x32", f="lavfi").output(str(cover), vframes=1),
        timeout_s=30,
    )
    await port.run(
        [
            "ffmpeg",
            "-i",
            str(mp3),
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


async def test_ffmpeg_and_ffprobe_read_presigned_urls(store: MediaStore, tmp_path: Path) -> None:
    port = FFmpeg()
    mp3 = tmp_path / "tone.mp3"
    await _make_sine_mp3(port, mp3)
    key = audio_key("job-url", "tone.mp3")
    await store.upload_file(key, mp3)
    url = await store.presign_get(key, 300)

    probe = await port.probe(url)
    assert probe.codec == "mp3"
    assert abs((probe.duration_ms or 0) - 2000) <= 50

    cut = tmp_path / "cut.wav"
    result = await port.run(FFmpeg.input(url, ss=0.5, t=1).output(str(cut), acodec="pcm_s16le"))
    assert "-protocol_whitelist" in result.argv
    cut_probe = await port.probe(cut)
    assert cut_probe.codec == "pcm_s16le"
    assert abs((cut_probe.duration_ms or 0) - 1000) <= 50
