"""Uploaded media: reading ffprobe's answer for video or audio, choosing the stored key."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.common.ffmpeg import NotMediaError
from services.common.ffmpeg.probe import MediaProbe, parse_media_probe
from services.submitter.media import CONTENT_TYPES, MediaPorts, media_extension, store_upload
from tests.support.fakes import MemoryMedia

VIDEO = {
    "codec_type": "video",
    "codec_name": "h264",
    "width": 1280,
    "height": 720,
    "avg_frame_rate": "30000/1001",
    "duration": "4.004",
}
AUDIO = {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2}
MP4 = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "4.010", "size": "5000"}


def probe_of(streams: list[dict[str, Any]], fmt: dict[str, Any] | None = None) -> MediaProbe:
    return parse_media_probe({"format": fmt if fmt is not None else MP4, "streams": streams})


def test_video_without_sound_is_media() -> None:
    probe = probe_of([VIDEO])
    assert (probe.has_video, probe.has_audio) == (True, False)
    assert (probe.video_codec, probe.audio_codec) == ("h264", None)
    assert (probe.width, probe.height, probe.frame_rate) == (1280, 720, 29.97)
    assert (probe.duration_ms, probe.size_bytes, probe.sample_rate) == (4010, 5000, None)


def test_sound_without_video_and_both() -> None:
    sound = probe_of([AUDIO])
    assert (sound.has_video, sound.has_audio, sound.width) == (False, True, None)
    assert (sound.audio_codec, sound.sample_rate, sound.channels) == ("aac", 48000, 2)
    both = probe_of([AUDIO, VIDEO])
    assert (both.has_video, both.has_audio) == (True, True)


def test_cover_art_is_not_video_and_nothing_is_not_media() -> None:
    art = {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}}
    assert probe_of([AUDIO, art]).has_video is False
    for streams in ([], [art], [{"codec_type": "subtitle", "codec_name": "subrip"}]):
        with pytest.raises(NotMediaError):
            probe_of(streams)


def test_odd_figures_are_left_out() -> None:
    probe = probe_of(
        [{**VIDEO, "avg_frame_rate": "0/0", "r_frame_rate": "25/1", "width": "x"}],
        {"format_name": "matroska,webm"},
    )
    # No format duration: the stream's.
    assert (probe.frame_rate, probe.width, probe.duration_ms) == (25.0, None, 4004)
    assert probe_of([{**VIDEO, "avg_frame_rate": "0/0"}]).frame_rate is None


@pytest.mark.parametrize(
    ("fmt", "streams", "filename", "ext"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", [VIDEO], None, "mp4"),
        ("mov,mp4,m4a,3gp,3g2,mj2", [VIDEO, AUDIO], "take.MOV", "mov"),
        ("mov,mp4,m4a,3gp,3g2,mj2", [AUDIO], "song.mp3", "m4a"),
        ("mov,mp4,m4a,3gp,3g2,mj2", [AUDIO], None, "m4a"),
        (
            "matroska,webm",
            [{**VIDEO, "codec_name": "vp9"}, {**AUDIO, "codec_name": "opus"}],
            None,
            "webm",
        ),
        ("matroska,webm", [VIDEO, AUDIO], None, "mkv"),
        ("matroska,webm", [VIDEO], "clip.webm", "webm"),
        ("matroska,webm", [AUDIO], None, "mka"),
        ("mp3", [AUDIO], "song.wav", "mp3"),
        ("mpegts", [VIDEO], "x.mp4", "ts"),
    ],
)
def test_the_extension_follows_the_container(
    fmt: str, streams: list[dict[str, Any]], filename: str | None, ext: str
) -> None:
    probe = probe_of(streams, {"format_name": fmt, "duration": "1"})
    assert media_extension(probe, filename) == ext
    assert ext in CONTENT_TYPES


@pytest.mark.parametrize("fmt", ["png_pipe", "image2", "tty", "gif", "hls", "concat", "srt", ""])
def test_other_containers_are_not_media(fmt: str) -> None:
    probe = probe_of([VIDEO], {"format_name": fmt, "duration": "1"})
    with pytest.raises(NotMediaError):
        media_extension(probe, "x.mp4")


def test_media_without_a_length_is_not_media() -> None:
    probe = replace(probe_of([VIDEO]), duration_ms=None)
    with pytest.raises(NotMediaError):
        media_extension(probe)
    with pytest.raises(NotMediaError):
        media_extension(replace(probe, duration_ms=0))


async def test_an_upload_is_stored_under_the_tenants_prefix(tmp_path: Path) -> None:
    upload = tmp_path / "file"
    upload.write_bytes(b"video bytes")
    media = MemoryMedia()
    probed: list[Path] = []

    async def probe(path: Path) -> MediaProbe:
        probed.append(path)
        return probe_of([VIDEO, AUDIO])

    stored = await store_upload(MediaPorts(media, probe), "acme", upload, "holiday.mov")
    assert re.fullmatch(r"media/acme/[0-9a-f]{32}\.mov", stored.s3_key)
    assert (stored.size_bytes, stored.content_type, stored.filename) == (
        11,
        "video/quicktime",
        "holiday.mov",
    )
    assert media.objects == {stored.s3_key: b"video bytes"} and probed == [upload]
    again = await store_upload(MediaPorts(media, probe), "acme", upload, None)
    assert again.s3_key != stored.s3_key and again.s3_key.endswith(".mp4")


async def test_what_is_not_media_is_never_stored(tmp_path: Path) -> None:
    upload = tmp_path / "file"
    upload.write_bytes(b"text")
    media = MemoryMedia()

    async def probe(path: Path) -> MediaProbe:
        return probe_of([VIDEO], {"format_name": "tty", "duration": "0.04"})

    with pytest.raises(NotMediaError):
        await store_upload(MediaPorts(media, probe), "acme", upload, "notes.mp4")
    assert media.objects == {}
