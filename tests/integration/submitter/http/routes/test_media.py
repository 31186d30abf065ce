"""``POST /v1/media`` against the real stack: real ffprobe, real S3."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.common.ffmpeg import FFmpeg
from services.common.settings import Settings
from tests.integration.submitter.kit import Api, make_tone, running_api

MEDIA = "/v1/media"


async def make_video(path: Path, *, audio: bool, seconds: float = 1.0) -> Path:
    """A small 320x240 25 fps MPEG-4 video, with a sine track when ``audio``."""
    argv = ["ffmpeg", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        argv += ["-c:a", "aac", "-shortest"]
    argv += ["-c:v", "mpeg4", "-pix_fmt", "yuv420p", str(path)]
    await FFmpeg().run(argv, timeout_s=60)
    return path


async def upload(api: Api, headers: dict[str, str], name: str, data: bytes) -> httpx.Response:
    return await api.client.post(MEDIA, headers=headers, files={"file": (name, data)})


async def test_video_and_audio_uploads_are_stored_under_the_tenants_prefix(
    settings: Settings, tmp_path: Path
) -> None:
    silent = await make_video(tmp_path / "silent.mp4", audio=False)
    talkie = await make_video(tmp_path / "talkie.mov", audio=True)
    tone = await make_tone(tmp_path / "tone.mp3", seconds=2.0)
    async with running_api(settings) as api:
        acme = await api.key_for("acme")

        r = await upload(api, acme, "clip.mp4", silent.read_bytes())
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["s3_key"].startswith("media/acme/") and body["s3_key"].endswith(".mp4")
        assert (body["has_video"], body["has_audio"]) == (True, False)
        assert (body["width"], body["height"], body["video_codec"]) == (320, 240, "mpeg4")
        assert body["frame_rate"] == 25.0 and body["audio_codec"] is None
        assert 900 <= body["duration_ms"] <= 1100
        assert body["size_bytes"] == silent.stat().st_size
        assert (body["content_type"], body["filename"]) == ("video/mp4", "clip.mp4")
        stored = await api.runtime.media.head(body["s3_key"])
        assert stored is not None and stored.size == body["size_bytes"]
        assert stored.content_type == "video/mp4"

        # The name picks among the container's own extensions only.
        r = await upload(api, acme, "talkie.mov", talkie.read_bytes())
        assert r.status_code == 201, r.text
        both = r.json()
        assert both["s3_key"].endswith(".mov") and both["content_type"] == "video/quicktime"
        assert (both["has_video"], both["has_audio"], both["audio_codec"]) == (True, True, "aac")
        assert both["sample_rate"] == 44100 and both["channels"] == 1

        r = await upload(api, acme, "song.wav", tone.read_bytes())
        assert r.status_code == 201, r.text
        sound = r.json()
        assert sound["s3_key"].endswith(".mp3") and sound["content_type"] == "audio/mpeg"
        assert (sound["has_video"], sound["has_audio"], sound["width"]) == (False, True, None)

        # Another tenant's uploads land under its own prefix.
        other = await api.key_for("other")
        r = await upload(api, other, "clip.mp4", silent.read_bytes())
        assert r.status_code == 201 and r.json()["s3_key"].startswith("media/other/")

        # A production job takes an upload as its video.
        job = await api.client.post(
            "/v1/jobs",
            headers=acme,
            json={
                "job_kind": "production",
                "prompt": "a test card",
                "video": body["s3_key"],
                "duration_seconds": 1,
            },
        )
        assert job.status_code == 202, job.text
        # ... but not another tenant's.
        foreign = await api.client.post(
            "/v1/jobs",
            headers=other,
            json={"job_kind": "production", "prompt": "x", "video": body["s3_key"]},
        )
        assert foreign.status_code == 403, foreign.text
        assert foreign.json()["error"]["code"] == "forbidden_s3_key"


async def test_what_is_not_media_is_refused_before_anything_is_stored(
    settings: Settings, tmp_path: Path
) -> None:
    image = tmp_path / "still.png"
    await FFmpeg().run(
        [
            "ffmpeg",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:duration=1",
            "-frames:v",
            "1",
            str(image),
        ],
        timeout_s=30,
    )
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        cases = [
            ("notes.mp4", b"hello, this is text and not a video\n" * 20),
            ("random.mp3", bytes(range(256)) * 40),
            ("still.mp4", image.read_bytes()),
            ("empty.mp4", b""),
        ]
        for name, data in cases:
            r = await upload(api, acme, name, data)
            assert r.status_code == 422, (name, r.text)
            error = r.json()["error"]
            assert (error["code"], error["param"]) == ("not_media", "file"), name
            assert str(tmp_path) not in r.text and "tapedeck-media-" not in r.text
        assert await api.runtime.media.list_keys("media/") == []


async def test_form_rules_and_the_size_limit(settings: Settings, tmp_path: Path) -> None:
    video = await make_video(tmp_path / "v.mp4", audio=False)
    size = video.stat().st_size
    async with running_api(settings, MEDIA_MAX_BYTES=size - 1) as api:
        acme = await api.key_for("acme")
        r = await upload(api, acme, "v.mp4", video.read_bytes())
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "too_large"

        r = await api.client.post(MEDIA, headers=acme, json={"s3_key": "ingest/acme/x.mp4"})
        assert r.status_code == 415
        assert r.json()["error"]["code"] == "unsupported_media_type"

        r = await api.client.post(MEDIA, headers=acme, files={"other": ("v.mp4", b"x")})
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "invalid_form"

        r = await api.client.post(MEDIA, headers=acme, files={"note": (None, "no file")})
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "missing_file"

        r = await api.client.post(MEDIA, files={"file": ("v.mp4", b"x")})
        assert r.status_code == 401
        assert await api.runtime.media.list_keys("media/") == []

    async with running_api(settings, MEDIA_MAX_BYTES=size) as api:
        acme = await api.key_for("acme")
        r = await upload(api, acme, "v.mp4", video.read_bytes())
        assert r.status_code == 201, r.text
