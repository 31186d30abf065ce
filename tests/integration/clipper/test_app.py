"""The clipper's Faust agent on real Kafka: every bad input over the topic is answered
with clip.failed and its code, malformed ones also land in the DLQ, good ones are cut."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from schemas import TOPICS, decode_event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from services.clipper.app import build_app
from services.clipper.settings import ClipperSettings
from services.common.episodes import EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.job_store import JobStore
from services.common.kafka import ensure_topics
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.registration import register_file
from services.common.settings import Settings
from tests.support import audio
from tests.support.kafka import produce, read


def request(request_id: str, **kw: object) -> bytes:
    base = {"episode_id": "ep-1", "start_ms": 1000, "duration_ms": 2000}
    base.update(kw)
    ok = ClipRequested(
        request_id=request_id, tenant_id="acme", producer="tests",
        episode_id="ep-1", start_ms=0, duration_ms=1,
    )  # fmt: skip
    body = json.loads(ok.model_dump_json())
    body.update(base)
    return json.dumps(body).encode()


EXPECTED = {
    "ok": None,
    "unknown": "episode_not_found",
    "negative": "invalid_time",
    "fraction": "invalid_time",
    "zero": "invalid_duration",
    "too-long": "duration_too_long",
    "past-end": "start_past_end",
    "dotdot": "invalid_episode_id",
    "slash": "invalid_episode_id",
    "control": "invalid_episode_id",
    # Another tenant's episode is as unknown over the topic as over HTTP.
    "intruder": "episode_not_found",
    # Larger than the DLQ producer may send, but its envelope is readable.
    "huge": "invalid_request",
}
HUGE_BYTES = 3 * 1024 * 1024


async def test_clip_requests_over_the_topic(settings: Settings, tmp_path: Path) -> None:
    await ensure_topics(settings)
    mongo = connect(settings)
    db = database(mongo, settings)
    store = EpisodeStore(db)
    async with MediaStore.from_settings(settings) as media:
        path = audio.make_episode(tmp_path / "ep.mp3", "vbr", 20)
        ffmpeg = FFmpeg.from_settings(settings)
        await register_file(path, episode_id="ep-1", tenant_id="acme", filename="ep.mp3",
                            store=store, media=media, ffmpeg=ffmpeg)  # fmt: skip

    clipper = ClipperSettings.model_construct(
        **settings.model_dump(), clipper_concurrency=2, clipper_web_port=None
    )
    app = build_app(clipper)
    records = [
        request("ok"),
        request("unknown", episode_id="nope"),
        request("negative", start_ms=-5),
        request("fraction", start_ms=1.5),
        request("zero", duration_ms=0),
        request("too-long", duration_ms=settings.clip_max_duration_ms + 1),
        request("past-end", start_ms=20_000),
        request("dotdot", episode_id="../x"),
        request("slash", episode_id="a/b"),
        request("control", episode_id="ep\x07"),
        request("intruder", tenant_id="intruder"),
        request("huge", padding="x" * HUGE_BYTES),
        b"not even json",
    ]
    await app.start()
    try:
        await produce(settings, TOPICS.clip_requests.full_name(settings.topic_prefix), records)
        results = await read(settings, TOPICS.clip_results.full_name(settings.topic_prefix),
                             len(EXPECTED), timeout_s=60, settle_s=1.0)  # fmt: skip
        dlq = await read(settings, TOPICS.clip_requests.dlq_name(settings.topic_prefix), 8,
                         settle_s=1.0)  # fmt: skip
    finally:
        await app.stop()

    events = [decode_event(r.value) for r in results if r.value]
    by_id = {e.request_id: e for e in events if isinstance(e, ClipReady | ClipFailed)}
    assert set(by_id) == set(EXPECTED), sorted(by_id)
    for request_id, code in EXPECTED.items():
        event = by_id[request_id]
        if code is None:
            assert isinstance(event, ClipReady), event
        else:
            assert isinstance(event, ClipFailed), event
            assert event.error.code == code, (request_id, event.error)
            assert event.error.message
    # Malformed (schema-invalid) ones are kept, bytes unchanged, with the reason.
    dead = {r.value: dict(r.headers) for r in dlq}
    huge = records[11]
    kept = {records[i] for i in (2, 3, 4, 7, 8, 9)} | {b"not even json"}
    assert set(dead) == kept | {huge[: 64 * 1024]}
    assert all(h["stage"] == b"clip" and h["error"] for h in dead.values())
    # Too large for the DLQ whole: its start, with its real size and hash to match it by.
    big = dead[huge[: 64 * 1024]]
    assert big["truncated"] == b"true"
    assert big["original_size"] == str(len(huge)).encode()
    assert big["original_sha256"] == hashlib.sha256(huge).hexdigest().encode()
    assert b"exceeds" in big["error"]

    stage = await JobStore(db).stage("ok", "clip")
    assert stage is not None and stage["status"] == "COMPLETED"
    assert [o["event_type"] for o in stage["outputs"]] == ["clip.ready"]
    failed = await JobStore(db).stage("unknown", "clip")
    assert failed is not None and failed["status"] == "FAILED"
    await mongo.close()
