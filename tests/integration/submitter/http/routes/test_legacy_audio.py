"""The MusicGen workflow's ``/api/v3/audio`` endpoints against the real stack. Neither the
audio agent nor the merger runs here: their outcomes are recorded on the stage records as
their stage runners would record them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from schemas import TOPICS, ErrorInfo, Event, decode_event
from schemas.audio import AudioFailed, AudioJobSubmitted, AudioRendered, AudioSegment
from schemas.merge import MergeCompleted, MergeRequested
from schemas.names import Producer, Stage
from services.common.job_store import JobStatusRecorder
from services.common.settings import Settings
from tests.integration.submitter.kit import Api, make_tone, running_api
from tests.support.kafka import read

AUDIO = "/api/v3/audio"
SCENES = [{"prompt": "calm piano", "duration_s": 2}, {"prompt": "rain", "duration_s": 3.5}]


async def requested(settings: Settings, topic: str, count: int) -> list[Event]:
    records = await read(settings, topic, count, settle_s=0.5)
    return [decode_event(r.value or b"") for r in records]


async def rendered(api: Api, event: AudioJobSubmitted, tmp_path: Path) -> list[str]:
    """What the audio agent would leave: a segment per scene, and its stage record."""
    tone = await make_tone(tmp_path / "segment.mp3", seconds=1.0)
    segments = []
    for scene in event.scenes:
        key = f"audio/{event.job_id}/a1-scene-{scene.index:03d}.mp3"
        await api.runtime.media.upload_file(key, tone)
        segments.append(
            AudioSegment(
                scene_index=scene.index,
                s3_key=key,
                duration_s=scene.seconds,
                provider="local",
                cached=False,
                silent_fallback=scene.index == 1,
            )
        )
    result = AudioRendered(
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.AUDIO_AGENT,
        segments=segments,
    )
    await JobStatusRecorder(api.runtime.jobs).finished(Stage.AUDIO, event, [result], False)
    return [s.s3_key for s in segments]


async def test_scenes_become_music_joined_with_the_old_fades(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        r = await api.client.post(
            f"{AUDIO}/generate-scenes",
            headers=acme,
            json={
                "job_id": "123",
                "scenes": SCENES,
                "tier": "standard",
                "audio_params": {"fade_duration": 2.0, "error_strategy": "halt"},
            },
        )
        assert r.status_code == 202, r.text
        body = r.json()
        audio_job_id = body["audio_job_id"]
        assert (body["job_id"], body["status"], body["scenes"]) == ("123", "processing", 2)
        assert body["audio_params"] == {
            "fade_duration": 2.0,
            "sync_mode": "trim",
            "merge_with_video": True,
            "error_strategy": "halt",
            "prompt": None,
        }
        assert r.headers["location"] == body["status_url"]
        assert body["status_url"].endswith(f"{AUDIO}/status/{audio_job_id}")
        assert body["download_url"].endswith(f"{AUDIO}/{audio_job_id}/download")

        [event] = await requested(settings, TOPICS.audio_jobs.full_name(settings.topic_prefix), 1)
        assert isinstance(event, AudioJobSubmitted) and event.job_id == audio_job_id
        assert (event.kind, event.tier, event.tenant_id) == ("music", "standard", "acme")
        assert [(s.index, s.prompt, s.seconds) for s in event.scenes] == [
            (0, "calm piano", 2.0),
            (1, "rain", 3.5),
        ]
        assert event.params.continuation and event.params.error_strategy == "halt"

        # Pending, by the old id and by ours; not ready to download.
        for job_id in ("123", audio_job_id):
            status = await api.client.get(f"{AUDIO}/status/{job_id}", headers=acme)
            assert status.status_code == 200, status.text
            assert status.json()["status"] == "pending"
            assert status.json()["audioStatus"] == "PENDING"
        early = await api.client.get(f"{AUDIO}/123/download", headers=acme)
        assert early.status_code == 409 and early.json()["error"]["code"] == "not_ready"
        assert early.headers["retry-after"] == "5"

        # The scenes are rendered: the first read starts the join, once.
        keys = await rendered(api, event, tmp_path)
        for _ in range(2):
            joining = (await api.client.get(f"{AUDIO}/status/123", headers=acme)).json()
            assert joining["status"] == "processing" and joining["progress"] == 90
            assert joining["silent_scenes"] == [1] and joining["audio_url"] is None
        merges = await requested(
            settings, TOPICS.merge_requests.full_name(settings.topic_prefix), 1
        )
        [merge] = merges
        assert isinstance(merge, MergeRequested)
        assert merge.job_id == f"{audio_job_id}.soundtrack"
        assert (merge.operation, merge.inputs) == ("crossfade_audio", keys)
        assert (merge.params.fade_mode, merge.params.fade_duration_s) == ("fade", 2.0)
        assert merge.output_key == f"audio/{audio_job_id}/soundtrack.mp3"

        # The merger joined them.
        joined = b"ID3 the joined soundtrack"
        (tmp_path / "joined.mp3").write_bytes(joined)
        await api.runtime.media.upload_file(merge.output_key, tmp_path / "joined.mp3")
        done_event = MergeCompleted(
            job_id=merge.job_id,
            tenant_id="acme",
            producer=Producer.MERGER,
            s3_key=merge.output_key,
            duration_ms=5500,
            size_bytes=len(joined),
        )
        await JobStatusRecorder(api.runtime.jobs).finished(Stage.MERGE, merge, [done_event], False)

        done = (await api.client.get(f"{AUDIO}/status/123", headers=acme)).json()
        assert (done["status"], done["progress"], done["audioStatus"]) == (
            "completed",
            100,
            "COMPLETED",
        )
        assert done["audio_url"] == done["audioUrl"] and done["audioError"] is None
        assert done["download_url"].endswith(f"{AUDIO}/{audio_job_id}/download")
        download = await api.client.get(f"{AUDIO}/123/download", headers=acme)
        assert download.status_code == 307, download.text
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(download.headers["location"])
        assert fetched.status_code == 200 and fetched.content == joined

        # Another tenant sees none of it.
        other = await api.key_for("other")
        for path in (f"{AUDIO}/status/123", f"{AUDIO}/{audio_job_id}/download"):
            r = await api.client.get(path, headers=other)
            assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"


async def test_one_scene_is_its_own_soundtrack_and_the_newest_job_answers(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        ids = []
        for prompt in ("first take", "second take"):
            r = await api.client.post(
                f"{AUDIO}/generate-scenes",
                headers=acme,
                json={"job_id": "ep-9", "scenes": [{"prompt": prompt, "duration_s": 4}]},
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["audio_job_id"])
        status = (await api.client.get(f"{AUDIO}/status/ep-9", headers=acme)).json()
        assert status["audio_job_id"] == ids[1] and status["job_id"] == "ep-9"

        events = await requested(settings, TOPICS.audio_jobs.full_name(settings.topic_prefix), 2)
        newest = next(e for e in events if isinstance(e, AudioJobSubmitted) and e.job_id == ids[1])
        assert isinstance(newest, AudioJobSubmitted)
        [key] = await rendered(api, newest, tmp_path)
        done = (await api.client.get(f"{AUDIO}/status/ep-9", headers=acme)).json()
        assert done["status"] == "completed"
        download = await api.client.get(f"{AUDIO}/ep-9/download", headers=acme)
        assert download.status_code == 307 and key in download.headers["location"]
        # No join was needed.
        merges = await read(
            settings, TOPICS.merge_requests.full_name(settings.topic_prefix), 1, timeout_s=1
        )
        assert merges == []

        # The older job still answers by its own id.
        older = (await api.client.get(f"{AUDIO}/status/{ids[0]}", headers=acme)).json()
        assert older["audio_job_id"] == ids[0] and older["status"] == "pending"


async def test_a_failed_job_says_why(settings: Settings, tmp_path: Path) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        r = await api.client.post(
            f"{AUDIO}/generate-scenes", headers=acme, json={"job_id": "7", "scenes": SCENES}
        )
        assert r.status_code == 202, r.text
        [event] = await requested(settings, TOPICS.audio_jobs.full_name(settings.topic_prefix), 1)
        assert isinstance(event, AudioJobSubmitted)
        error = ErrorInfo(
            code="provider_failed",
            message="the audio provider could not generate this scene",
            retryable=False,
            attempts=3,
        )
        failed = AudioFailed(
            job_id=event.job_id, tenant_id="acme", producer=Producer.AUDIO_AGENT, error=error
        )
        await JobStatusRecorder(api.runtime.jobs).finished(Stage.AUDIO, event, [failed], True)

        status = (await api.client.get(f"{AUDIO}/status/7", headers=acme)).json()
        assert (status["status"], status["audioStatus"]) == ("failed", "FAILED")
        assert status["error"] == {"code": "provider_failed", "message": error.message}
        assert status["audioError"] == error.message and status["download_url"] is None
        download = await api.client.get(f"{AUDIO}/7/download", headers=acme)
        assert download.status_code == 409
        assert download.json()["error"]["code"] == "job_finished"


async def test_without_scenes_the_named_job_gives_them(settings: Settings, tmp_path: Path) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        tone = await make_tone(tmp_path / "v.mp3", seconds=1.0)
        await api.runtime.media.upload_file("ingest/acme/v.mp4", tone)
        production: dict[str, Any] = {
            "job_kind": "production",
            "prompt": "a city at night",
            "scenes": [
                {"prompt": "streets", "duration_s": 3, "video": "ingest/acme/v.mp4"},
                {"prompt": "rooftops", "duration_s": 4, "video": "ingest/acme/v.mp4"},
            ],
        }
        r = await api.client.post("/v1/jobs", headers=acme, json=production)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        r = await api.client.post(
            f"{AUDIO}/generate-scenes",
            headers=acme,
            json={"job_id": job_id, "audio_params": {"prompt": "Epic orchestral music"}},
        )
        assert r.status_code == 202, r.text
        assert r.json()["scenes"] == 2
        events = await requested(settings, TOPICS.audio_jobs.full_name(settings.topic_prefix), 1)
        [event] = [e for e in events if isinstance(e, AudioJobSubmitted)]
        assert [(s.prompt, s.seconds) for s in event.scenes] == [
            ("Epic orchestral music", 3.0),
            ("Epic orchestral music", 4.0),
        ]
        # The production job's own status is untouched; the audio answers under its id.
        status = (await api.client.get(f"{AUDIO}/status/{job_id}", headers=acme)).json()
        assert status["audio_job_id"] == r.json()["audio_job_id"]

        for body, code in [
            ({"job_id": "no-such-job"}, "job_not_found"),
            ({"job_id": r.json()["audio_job_id"], "scenes": []}, None),
        ]:
            r = await api.client.post(f"{AUDIO}/generate-scenes", headers=acme, json=body)
            if code:
                assert r.status_code == 404 and r.json()["error"]["code"] == code
            else:
                assert r.status_code == 422, r.text
        other = await api.key_for("other")
        r = await api.client.post(
            f"{AUDIO}/generate-scenes", headers=other, json={"job_id": job_id}
        )
        assert r.status_code == 404


async def test_request_rules(settings: Settings) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        invalid: list[Any] = [
            {"scenes": SCENES},
            {"job_id": "../x", "scenes": SCENES},
            {"job_id": "1", "scenes": [{"prompt": " ", "duration_s": 1}]},
            {"job_id": "1", "scenes": [{"prompt": "a", "duration_s": 601}]},
            {"job_id": "1", "scenes": [{"prompt": "a", "duration_s": 0}]},
            {"job_id": "1", "scenes": SCENES, "audio_params": {"merge_with_video": 0}},
            {"job_id": "1", "scenes": SCENES, "audio_params": {"fade_duration": 11}},
            {"job_id": "1", "scenes": SCENES, "audio_params": {"sync_mode": "loop"}},
            {"job_id": "1", "scenes": SCENES, "tier": "gold"},
            {"job_id": "1", "scenes": SCENES, "extra": True},
        ]
        for body in invalid:
            r = await api.client.post(f"{AUDIO}/generate-scenes", headers=acme, json=body)
            assert r.status_code == 422, (body, r.text)
        r = await api.client.post(f"{AUDIO}/generate-scenes", json={"job_id": "1"})
        assert r.status_code == 401
        assert (await api.client.get(f"{AUDIO}/status/nope", headers=acme)).status_code == 404
        assert (await api.client.get(f"{AUDIO}/nope/download", headers=acme)).status_code == 404
