"""From an HTTP request through Kafka to a clip in S3 and back, with every part real:
the submitter and the clipper run as their own processes, configured by environment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.media_store import MediaStore
from services.common.settings import Settings
from tests.support import audio
from tests.support.services import ROOT, running, settings_env


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def new_key(settings: Settings, tenant: str) -> str:
    env = {**os.environ, **settings_env(settings)}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "tapedeck"), "keys", "create", "--tenant", tenant,
         "--json"],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return str(json.loads(out.stdout)["key"])


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    key = new_key(settings, "e2e")
    with running(settings, tmp_path) as base:
        yield base, {"X-API-Key": key}


# What a public error must never carry: signed URLs, storage endpoints and keys, our
# bucket layout, a tool's stderr.
LEAKS = ("http://", "https://", "X-Amz", "Signature", "tapedeck-local", "episodes/", "ffmpeg",
         "ffprobe", "0x", "Traceback")  # fmt: skip


def assert_no_internals(body: str) -> None:
    assert not [leak for leak in LEAKS if leak in body], body


async def test_clip_miss_then_hit_then_concurrent_then_bad_input(
    api: tuple[str, dict[str, str]], tmp_path: Path, settings: Settings
) -> None:
    base, headers = api
    source = audio.make_episode(tmp_path / "ep.mp3", "vbr", 60)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        with source.open("rb") as fh:
            resp = await client.post(
                "/v1/episodes", files={"file": ("ep.mp3", fh, "audio/mpeg")},
                data={"episode_id": "ep-e2e"},
            )  # fmt: skip
        assert resp.status_code == 201, resp.text
        assert abs(resp.json()["duration_ms"] - 60_000) <= 27

        url = "/api/v1/audio_clips/ep-e2e"
        miss = await client.get(url, params={"start_time_ms": 8000, "duration_ms": 4000})
        assert miss.status_code == 200, miss.text
        assert miss.json()["cache_hit"] is False and miss.json()["generation_time_ms"] > 0
        clip = await client.get(miss.json()["clip_url"])
        assert clip.status_code == 200
        (tmp_path / "clip.mp3").write_bytes(clip.content)
        samples = audio.decode(tmp_path / "clip.mp3")
        assert abs(audio.duration_ms(samples) - 4000) <= 27
        assert abs(audio.change_point_ms(samples, 400, 500, 1700, 2300) - 2000) <= 27

        hit = await client.get(url, params={"start_time_ms": 8000, "duration_ms": 4000})
        assert hit.status_code == 200 and hit.json()["cache_hit"] is True

        params = {"start_time_ms": 20_000, "duration_ms": 3000}
        many = await asyncio.gather(*(client.get(url, params=params) for _ in range(20)))
        assert all(r.status_code == 200 for r in many), [r.text for r in many]
        answers = {(r.json()["size_bytes"], r.json()["end_ms"]) for r in many}
        assert answers == {(many[0].json()["size_bytes"], 23_000)}
        async with MediaStore.from_settings(settings) as media:
            # One object per distinct range asked for, under the tenant's own prefix.
            assert len(await media.list_keys("audio_clips/e2e/ep-e2e/")) == 2

        # Another tenant cannot clip, or even detect, e2e's episode.
        intruder = {"X-API-Key": new_key(settings, "intruder")}
        stolen = await client.get(url, params=params, headers=intruder)
        assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "episode_not_found"

        bad = await client.get(url, params={"start_time_ms": 70_000, "duration_ms": 1000})
        assert bad.status_code == 422 and "start_past_end" in bad.text
        unknown = await client.get("/api/v1/audio_clips/nope", params=params)
        assert unknown.status_code == 404

        # The source vanishes from S3: cached clips still answer, new cuts fail clearly.
        source_key = resp.json()["s3_key"]
        async with MediaStore.from_settings(settings) as media:
            await media.delete(source_key)
        cached = await client.get(url, params=params)
        assert cached.status_code == 200 and cached.json()["cache_hit"] is True
        gone = await client.get(url, params={"start_time_ms": 30_000, "duration_ms": 1000})
        assert gone.status_code == 502 and gone.json()["error"]["code"] == "source_missing"
        assert_no_internals(gone.text)

        # The source is replaced in storage by something else: a server-side problem
        # (502), told in plain words, whether it shrank or no longer decodes.
        async with MediaStore.from_settings(settings) as media:
            await media.upload_file(source_key, write(tmp_path / "stub", b"ID3" + b"\0" * 7))
            shrunk = await client.get(url, params={"start_time_ms": 40_000, "duration_ms": 500})
            garbage = write(tmp_path / "junk", b"this is not audio\n" * 60_000)
            await media.upload_file(source_key, garbage)
            corrupt = await client.get(url, params={"start_time_ms": 1_000, "duration_ms": 500})
        for failed in (shrunk, corrupt):
            assert failed.status_code == 502, failed.text
            assert failed.json()["error"]["code"] in {"invalid_range", "source_unreadable"}
            assert_no_internals(failed.text)
