"""The audio agent's Faust agent on the real stack (Kafka, MongoDB, S3, ffmpeg), with the
offline provider: jobs in over the topic, segments in S3, one outcome each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from schemas import TOPICS, decode_event
from schemas.audio import AudioFailed, AudioJobSubmitted, AudioRendered, Scene
from schemas.names import Stage
from services.audio_agent.app import build_app
from services.audio_agent.settings import AudioAgentSettings
from services.common.ffmpeg import FFmpeg
from services.common.job_store import JobStore, StageStatus
from services.common.kafka import ensure_topics
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from tests.support.contract.fal import KEY as FAL_KEY
from tests.support.contract.fal import FalContract
from tests.support.contract.server import serve
from tests.support.kafka import produce, read
from tests.support.services import start_service, stop_service


def agent_settings(settings: Settings, **extra: Any) -> AudioAgentSettings:
    return AudioAgentSettings.model_construct(
        **{**AudioAgentSettings().model_dump(), **settings.model_dump(), **extra}
    )


def music_job(job_id: str, durations: list[float], **kw: Any) -> AudioJobSubmitted:
    scenes = [Scene(index=i, prompt=f"calm piano scene {i}", duration_s=d)
              for i, d in enumerate(durations)]  # fmt: skip
    return AudioJobSubmitted(job_id=job_id, tenant_id="acme", producer="tests", tier="basic",
                             kind="music", scenes=scenes, **kw)  # fmt: skip


async def test_a_three_scene_music_job_with_the_local_provider(
    settings: Settings, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    durations = [2.0, 3.5, 2.75]
    good = music_job("job-music", durations)
    # A model the provider does not have never reaches it: the job fails at once.
    bad = json.loads(music_job("job-bad", [1.0]).model_dump_json())
    bad["kind"], bad["model"] = "music", "no-such-model"
    app = build_app(agent_settings(settings, audio_concurrency=2))
    await app.start()
    try:
        topic = TOPICS.audio_jobs.full_name(settings.topic_prefix)
        await produce(settings, topic, [good.model_dump_json().encode(), json.dumps(bad).encode()])
        results = await read(settings, TOPICS.audio_results.full_name(settings.topic_prefix),
                             2, timeout_s=120, settle_s=1.0)  # fmt: skip
    finally:
        await app.stop()
    events = {e.job_id: e for e in (decode_event(r.value) for r in results if r.value)
              if isinstance(e, AudioRendered | AudioFailed)}  # fmt: skip
    assert set(events) == {"job-music", "job-bad"}
    rendered = events["job-music"]
    assert isinstance(rendered, AudioRendered)
    assert [s.scene_index for s in rendered.segments] == [0, 1, 2]
    ffmpeg = FFmpeg.from_settings(settings)
    async with MediaStore.from_settings(settings) as media:
        assert await media.list_keys("audio/job-music/") == [s.s3_key for s in rendered.segments]
        for seg, want in zip(rendered.segments, durations, strict=True):
            assert seg.provider == "local" and not seg.silent_fallback
            path = tmp_path / seg.s3_key.rsplit("/", 1)[-1]
            await media.download_file(seg.s3_key, path)
            probe = await ffmpeg.probe(path)
            assert probe.codec == "mp3" and probe.sample_rate == 44100
            assert probe.duration_ms is not None and abs(probe.duration_ms - want * 1000) <= 50
    failed = events["job-bad"]
    assert isinstance(failed, AudioFailed) and failed.error.code == "invalid_audio_request"

    mongo = connect(settings)
    try:
        jobs = JobStore(database(mongo, settings))
        stage = await jobs.stage("job-music", Stage.AUDIO)
        assert stage is not None and stage["status"] == StageStatus.COMPLETED
        assert stage["progress"]["done"] == stage["progress"]["total"] == 3
        assert {stage["scenes"][str(i)]["status"] for i in range(3)} == {"done"}
        bad_stage = await jobs.stage("job-bad", Stage.AUDIO)
        assert bad_stage is not None and bad_stage["status"] == StageStatus.FAILED
    finally:
        await mongo.close()


# -- with a provider that fails, is slow, or is asked twice -----------------------------------

FAL_MUSIC = '{"standard": {"music": "fal:cassetteai/music-generator"}}'


@pytest.fixture
async def fal() -> AsyncIterator[tuple[FalContract, str]]:
    contract = FalContract()
    async with serve(contract.app) as url:
        yield contract, url


def fal_env(url: str) -> dict[str, Any]:
    return {"audio_tier_map": FAL_MUSIC, "fal_queue_url": url, "fal_key": SecretStr(FAL_KEY),
            "provider_poll_min_s": 0.05, "provider_poll_max_s": 0.2}  # fmt: skip


def fal_job(job_id: str, prompts: list[str], **params: Any) -> AudioJobSubmitted:
    scenes = [Scene(index=i, prompt=p, duration_s=10.0) for i, p in enumerate(prompts)]
    return AudioJobSubmitted(job_id=job_id, tenant_id="acme", producer="tests",
                             tier="standard", kind="music", scenes=scenes,
                             params=params)  # type: ignore[arg-type]  # fmt: skip


async def outcomes(settings: Settings, count: int) -> dict[str, AudioRendered | AudioFailed]:
    results = await read(settings, TOPICS.audio_results.full_name(settings.topic_prefix),
                         count, timeout_s=120, settle_s=0.5)  # fmt: skip
    out: dict[str, AudioRendered | AudioFailed] = {}
    for r in results:
        event = decode_event(r.value) if r.value else None
        if isinstance(event, AudioRendered | AudioFailed):
            assert event.job_id not in out, f"two outcomes for {event.job_id}"
            out[event.job_id] = event
    return out


async def test_failing_scenes_follow_the_jobs_strategy_and_repeats_come_from_the_cache(
    settings: Settings, fal: tuple[FalContract, str]
) -> None:
    contract, url = fal
    contract.failing_words = {"thunderstorm"}
    await ensure_topics(settings)
    topic = TOPICS.audio_jobs.full_name(settings.topic_prefix)
    mongo = connect(settings)
    jobs = JobStore(database(mongo, settings))
    # The job's video is someone else's stage: audio failing must not touch it.
    await jobs.transition("job-halt", Stage.VIDEO, StageStatus.RUNNING, {"video": "v.mp4"})
    app = build_app(agent_settings(settings, **fal_env(url)))
    await app.start()
    try:
        await produce(settings, topic, [
            fal_job("job-silence", ["calm sea", "thunderstorm at sea"]).model_dump_json().encode(),
            fal_job("job-halt", ["thunderstorm"], error_strategy="halt").model_dump_json().encode(),
            fal_job("job-first", ["sunny meadow"]).model_dump_json().encode(),
        ])  # fmt: skip
        first = await outcomes(settings, 3)
        submits_before = contract.counts["submit"]
        await produce(
            settings, topic, [fal_job("job-again", ["sunny meadow"]).model_dump_json().encode()]
        )
        second = await outcomes(settings, 4)
    finally:
        await app.stop()
    try:
        silence = first["job-silence"]
        assert isinstance(silence, AudioRendered)
        assert [s.silent_fallback for s in silence.segments] == [False, True]
        error = silence.segments[1].error
        assert error is not None and error.code == "provider_failed"
        assert "crashed" not in error.message  # the provider's words are for operators
        stage = await jobs.stage("job-silence", Stage.AUDIO)
        assert stage is not None and stage["status"] == StageStatus.COMPLETED

        halted = first["job-halt"]
        assert isinstance(halted, AudioFailed) and halted.error.code == "provider_failed"
        assert halted.error.message.startswith("scene 0: ")
        stage = await jobs.stage("job-halt", Stage.AUDIO)
        assert stage is not None and stage["status"] == StageStatus.FAILED
        assert "Model crashed" in stage["operator_detail"]
        video = await jobs.stage("job-halt", Stage.VIDEO)
        assert video is not None and video["status"] == StageStatus.RUNNING
        assert video["video"] == "v.mp4" and "outputs" not in video

        again = second["job-again"]
        assert isinstance(again, AudioRendered) and again.segments[0].cached
        assert contract.counts["submit"] == submits_before  # no provider call
        assert again.segments[0].request_id == first["job-first"].segments[0].request_id  # type: ignore[union-attr]
    finally:
        await mongo.close()


async def test_an_agent_killed_while_waiting_resumes_the_request_and_pays_once(
    settings: Settings, fal: tuple[FalContract, str], tmp_path: Path
) -> None:
    contract, url = fal
    contract.script({"status": "IN_QUEUE", "queue_position": 3}, {"status": "IN_PROGRESS"})
    await ensure_topics(settings)
    env = {"AUDIO_TIER_MAP": FAL_MUSIC, "FAL_QUEUE_URL": url, "FAL_KEY": FAL_KEY,
           "PROVIDER_POLL_MIN_S": "0.1", "PROVIDER_POLL_MAX_S": "0.3", "TMPDIR": str(tmp_path),
           # Faust's own settings: a restarted worker gets the partitions back in seconds.
           "BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}  # fmt: skip
    log = tmp_path / "audio-agent.log"
    agent = start_service("services.audio_agent", settings, log, **env)
    try:
        topic = TOPICS.audio_jobs.full_name(settings.topic_prefix)
        await produce(
            settings, topic, [fal_job("job-crash", ["slow jazz"]).model_dump_json().encode()]
        )
        await until(lambda: contract.counts["status"] >= 3, 60, log)
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait()
        polled = contract.counts["status"]
        agent = start_service("services.audio_agent", settings, log, **env)
        # The redelivered job polls the request it recorded; then the provider finishes.
        await until(lambda: contract.counts["status"] > polled + 2, 60, log)
        contract.script({"status": "COMPLETED"})
        done = await outcomes(settings, 1)
    finally:
        stop_service(agent)
    rendered = done["job-crash"]
    assert isinstance(rendered, AudioRendered) and not rendered.segments[0].silent_fallback
    assert contract.counts["submit"] == 1, "the provider was asked twice"
    assert rendered.segments[0].request_id in contract.jobs


async def until(ready: Callable[[], bool], timeout_s: float, log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not ready():
        if asyncio.get_running_loop().time() > deadline:
            text = await asyncio.to_thread(log.read_text)
            raise AssertionError(f"timed out; agent log:\n{text[-3000:]}")
        await asyncio.sleep(0.1)
