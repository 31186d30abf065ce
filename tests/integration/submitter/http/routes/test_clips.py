"""The clip API against the real stack: parameter rules, cache hits, misses and status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from schemas import TOPICS, ErrorInfo, decode_event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.names import Stage
from services.common.clip_rules import plan_clip
from services.common.job_store import JobStatusRecorder, JobStore
from services.common.kafka import KafkaEmitter
from services.common.mongo import connect, database
from services.common.settings import Settings
from tests.integration.submitter.kit import Api, make_tone, running_api
from tests.support.kafka import read
from tests.support.submitter import failed_for, ready_for

CLIPS = "/api/v1/audio_clips"


async def _episode(api: Api, tmp_path: Path, headers: dict[str, str], episode_id: str) -> None:
    tone = await make_tone(tmp_path / f"{episode_id}.mp3", seconds=3.0)
    with tone.open("rb") as fh:
        r = await api.client.post(
            "/v1/episodes",
            headers=headers,
            files={"file": ("tone.mp3", fh)},
            data={"episode_id": episode_id},
        )
    assert r.status_code == 201, r.text


async def test_bad_parameters_name_the_parameter(settings: Settings, tmp_path: Path) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        await _episode(api, tmp_path, acme, "ep-1")
        cases = [
            ("ep-1?start_time_ms=abc&duration_ms=1000", "start_time_ms", "invalid_time"),
            ("ep-1?start_time_ms=0&duration_ms=1.5", "duration_ms", "invalid_duration"),
            ("ep-1?duration_ms=1000", "start_time_ms", "invalid_time"),
            ("ep-1?start_time_ms=-1&duration_ms=1000", "start_time_ms", "invalid_time"),
            ("ep-1?start_time_ms=0&duration_ms=0", "duration_ms", "invalid_duration"),
            ("ep-1?start_time_ms=0&duration_ms=-5", "duration_ms", "invalid_duration"),
            ("ep-1?start_time_ms=0&duration_ms=600001", "duration_ms", "duration_too_long"),
            ("ep-1?start_time_ms=3000000&duration_ms=1000", "start_time_ms", "start_past_end"),
            ("ep-1?start_time_ms=0&duration_ms=1000&format=ogg", "format", "invalid_format"),
            ("ep-1?start_time_ms=0&duration_ms=1000&accurate=maybe", "accurate", "invalid_request"),
            ("..%2Fx?start_time_ms=0&duration_ms=1000", "episode_id", "invalid_episode_id"),
            ("a%2Fb?start_time_ms=0&duration_ms=1000", "episode_id", "invalid_episode_id"),
            ("-x?start_time_ms=0&duration_ms=1000", "episode_id", "invalid_episode_id"),
            ("nope?start_time_ms=0&duration_ms=1000", "episode_id", "episode_not_found"),
        ]
        for query, param, code in cases:
            r = await api.client.get(f"{CLIPS}/{query}", headers=acme)
            expected = 404 if code == "episode_not_found" else 422
            assert r.status_code == expected, (query, r.text)
            error = r.json()["error"]
            assert (error["param"], error["code"]) == (param, code), (query, error)
            assert error["message"]

        # Another tenant's episode does not exist for this caller.
        other = await api.key_for("other")
        r = await api.client.get(f"{CLIPS}/ep-1?start_time_ms=0&duration_ms=1000", headers=other)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "episode_not_found"


async def test_cache_hit_is_served_without_kafka(settings: Settings, tmp_path: Path) -> None:
    async with running_api(settings, CLIP_WAIT_TIMEOUT_S=0.3) as api:
        acme = await api.key_for("acme")
        await _episode(api, tmp_path, acme, "ep-hit")
        episode = await api.runtime.episodes.get("acme", "ep-hit")
        assert episode is not None
        # The range runs past the end: the plan clamps it, as the clipper would.
        plan = plan_clip(episode, 1000, 5000, "mp3", False, api.settings.clip_max_duration_ms)
        assert plan.end_ms == episode.duration_ms
        content = b"ID3 not really a clip, but bytes to fetch back"
        (tmp_path / "clip.mp3").write_bytes(content)
        await api.runtime.media.upload_file(plan.key, tmp_path / "clip.mp3")
        await api.runtime.clips.insert(plan, len(content), 42)

        r = await api.client.get(
            f"{CLIPS}/ep-hit?start_time_ms=1000&duration_ms=5000", headers=acme
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["cache_hit"] is True
        assert isinstance(body["generation_time_ms"], int)
        assert body["s3_key"] == plan.key and body["size_bytes"] == len(content)
        assert (body["start_ms"], body["end_ms"], body["format"]) == (1000, plan.end_ms, "mp3")
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(body["clip_url"])
        assert fetched.status_code == 200 and fetched.content == content

        # Hits are counted in memory and written in batches, off the request path.
        assert await api.runtime.hit_log.flush() == 1
        counts = await api.runtime.clips.most_requested(timedelta(hours=1), 10)
        assert [(c["episode_id"], c["start_ms"], c["count"]) for c in counts] == [
            ("ep-hit", 1000, 1)
        ]

        # Recorded but gone from the bucket: not a hit, so it goes to the clipper.
        stale = plan_clip(episode, 0, 500, "mp3", False, api.settings.clip_max_duration_ms)
        await api.runtime.clips.insert(stale, 10, 1)
        r = await api.client.get(f"{CLIPS}/ep-hit?start_time_ms=0&duration_ms=500", headers=acme)
        assert r.status_code == 202


async def test_miss_without_clipper_answers_202_with_a_pending_status(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings, CLIP_WAIT_TIMEOUT_S=0.5) as api:
        acme = await api.key_for("acme")
        await _episode(api, tmp_path, acme, "ep-miss")
        r = await api.client.get(
            f"{CLIPS}/ep-miss?start_time_ms=500&duration_ms=1000&format=wav", headers=acme
        )
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "pending" and body["request_id"].startswith("clip-")
        assert r.headers["location"] == body["status_url"]
        assert body["status_url"].endswith(f"/api/v1/clip_requests/{body['request_id']}")

        status = await api.client.get(body["status_url"], headers=acme)
        assert status.status_code == 200
        assert status.json() == {
            "request_id": body["request_id"],
            "status": "pending",
            "episode_id": "ep-miss",
        }
        other = await api.key_for("other")
        assert (await api.client.get(body["status_url"], headers=other)).status_code == 404
        unknown = await api.client.get("/api/v1/clip_requests/clip-nope", headers=acme)
        assert unknown.status_code == 404

        records = await read(settings, TOPICS.clip_requests.full_name(settings.topic_prefix), 1)
        events = [decode_event(rec.value) for rec in records if rec.value]
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, ClipRequested)
        assert event.request_id == body["request_id"]
        assert (event.tenant_id, event.producer) == ("acme", "submitter")
        assert (event.episode_id, event.start_ms, event.duration_ms, event.format) == (
            "ep-miss",
            500,
            1000,
            "wav",
        )
        assert records[0].key == body["request_id"].encode()
        assert len(api.runtime.waiter) == 0


@contextlib.asynccontextmanager
async def fake_clipper(settings: Settings, fail_at_ms: int) -> AsyncIterator[None]:
    """Stands in for the clipper: answers every request, recording status as its stage
    runner would; a request starting at ``fail_at_ms`` fails."""
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    emitter = KafkaEmitter(settings, "fake-clipper")
    mongo = connect(settings)
    recorder = JobStatusRecorder(JobStore(database(mongo, settings)))
    await consumer.start()
    await emitter.start()

    # Held while a request is handled: the clipper is stopped only between requests, so
    # the status of one it answered is recorded, as the real runner's would be.
    busy = asyncio.Lock()

    async def answer(value: bytes) -> None:
        event = decode_event(value)
        assert isinstance(event, ClipRequested)
        await recorder.started(Stage.CLIP, event)
        result: ClipReady | ClipFailed
        if event.start_ms == fail_at_ms:
            error = ErrorInfo(code="ffmpeg_failed", message="boom", retryable=False, attempts=1)
            result = failed_for(event).model_copy(update={"error": error})
        else:
            result = ready_for(event).model_copy(update={
                "s3_key": f"audio_clips/{event.episode_id}/x.mp3",
                "clip_url": "http://127.0.0.1:7070/clip.mp3",
                "generation_time_ms": 321,
                "size_bytes": 1234,
            })  # fmt: skip
        await emitter.emit([result])
        await recorder.finished(Stage.CLIP, event, [result], isinstance(result, ClipFailed))

    async def serve() -> None:
        async for record in consumer:
            async with busy:
                await answer(record.value or b"")

    task = asyncio.create_task(serve())
    try:
        yield
    finally:
        async with busy:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()
        await emitter.stop()
        await mongo.close()


async def test_miss_is_answered_by_the_clip_result(settings: Settings, tmp_path: Path) -> None:
    async with running_api(settings, CLIP_WAIT_TIMEOUT_S=20) as api:
        acme = await api.key_for("acme")
        await _episode(api, tmp_path, acme, "ep-cut")
        async with fake_clipper(settings, fail_at_ms=2000):
            ok, failed = await asyncio.gather(
                api.client.get(f"{CLIPS}/ep-cut?start_time_ms=0&duration_ms=1000", headers=acme),
                api.client.get(f"{CLIPS}/ep-cut?start_time_ms=2000&duration_ms=500", headers=acme),
            )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["cache_hit"] is False and body["generation_time_ms"] == 321
        assert body["clip_url"] == "http://127.0.0.1:7070/clip.mp3"
        assert body["request_id"].startswith("clip-")

        assert failed.status_code == 502, failed.text
        error = failed.json()["error"]
        assert (error["code"], error["message"]) == ("ffmpeg_failed", "boom")
        assert error["request_id"].startswith("clip-")

        # The waiter answers from the result event; the stage record the status is read
        # from is the clipper's own write after it, so it may trail the answer a moment.
        async def settled(request_id: str) -> httpx.Response:
            for _ in range(100):
                r = await api.client.get(f"/api/v1/clip_requests/{request_id}", headers=acme)
                if r.status_code != 200 or r.json()["status"] != "running":
                    break
                await asyncio.sleep(0.05)
            return r

        done = await settled(body["request_id"])
        assert done.status_code == 200
        assert done.json()["status"] == "completed"
        assert done.json()["clip_url"] == body["clip_url"]
        gone = await settled(error["request_id"])
        assert gone.json()["status"] == "failed"
        assert gone.json()["error"]["code"] == "ffmpeg_failed"
        assert len(api.runtime.waiter) == 0
