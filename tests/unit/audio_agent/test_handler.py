"""The audio stage with a scripted provider, the shared in-memory ports and real ffmpeg:
scenes in order with continuation, checkpoints that never pay twice, the error
strategies, the generation cache, regeneration and bad input."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import pytest

from schemas.audio import AudioJobSubmitted, AudioParams, AudioRendered, Scene
from schemas.codes import Code
from schemas.names import Stage
from services.audio_agent.handler import AudioConfig, AudioHandler, SceneFailed
from services.audio_agent.providers.base import InvalidGeneration, Provider
from services.audio_agent.tiers import TierMap
from services.common.ffmpeg import FFmpeg
from services.common.job_store import StageStatus
from tests.support.fakes import MemoryCheckpoints, MemoryJobs, MemoryMedia, context_for
from tests.support.providers import MemoryGenerationCache, ScriptedProvider

TIERS = TierMap.parse('{"basic": {"music": "local:m1", "sfx": "local:m1", '
                      '"voiceover": "local:m1"}}')  # fmt: skip


class World:
    def __init__(self, provider: ScriptedProvider | None = None, concurrency: int = 3) -> None:
        self.provider = provider or ScriptedProvider()
        self.media, self.cache = MemoryMedia(), MemoryGenerationCache()
        self.checkpoints, self.jobs = MemoryCheckpoints(), MemoryJobs()
        providers: dict[str, Provider] = {"local": self.provider}
        self.handler = AudioHandler(
            providers=providers, media=self.media, ffmpeg=FFmpeg(timeout_s=30),
            cache=self.cache, config=AudioConfig(TIERS, 60.0, concurrency, True),
        )  # fmt: skip

    async def run(self, event: AudioJobSubmitted) -> AudioRendered:
        await self.jobs.transition(event.job_id, Stage.AUDIO, StageStatus.RUNNING)
        ctx = context_for(event, Stage.AUDIO, checkpoints=self.checkpoints, jobs=self.jobs)
        (out,) = await self.handler(event, ctx)
        assert isinstance(out, AudioRendered)
        return out

    def wav_seconds(self, key: str) -> float:
        with wave.open(io.BytesIO(self.media.objects[key])) as w:
            return w.getnframes() / w.getframerate()


def job(kind: str = "music", n: int = 3, job_id: str = "job-1", **kw: Any) -> AudioJobSubmitted:
    scenes = [
        Scene(index=i, prompt=f"scene {i} calm piano", duration_s=1.0 + i * 0.5,
              text=f"Line {i}." if kind == "voiceover" else None)
        for i in range(n)
    ]  # fmt: skip
    params = AudioParams.model_validate({"format": "wav", **kw.pop("params", {})})
    fields: dict[str, Any] = {"tenant_id": "acme", "producer": "tests", "tier": "basic",
                              "kind": kind, **kw}  # fmt: skip
    return AudioJobSubmitted(job_id=job_id, scenes=scenes, params=params, **fields)


async def test_music_scenes_run_in_order_each_continuing_the_last() -> None:
    world = World()
    out = await world.run(job())
    assert [s.scene_index for s in out.segments] == [0, 1, 2]
    assert [s.s3_key for s in out.segments] == [f"audio/job-1/a1-scene-00{i}.wav" for i in range(3)]
    for seg in out.segments:
        # Padded to the scene's length although the provider gave less.
        assert abs(world.wav_seconds(seg.s3_key) - seg.duration_s) < 0.001
        assert (seg.provider, seg.model, seg.cached, seg.silent_fallback) == (
            "local", "m1", False, False)  # fmt: skip
        assert seg.prompt is not None and seg.sent_prompt is not None
        assert seg.sent_prompt.startswith(seg.prompt) and seg.sent_prompt != seg.prompt
    first, second, third = world.provider.submits
    assert first.continuation_state is None and first.continuation_url is None
    assert second.continuation_state == {"after": out.segments[0].request_id}
    assert second.continuation_url is not None and "a1-scene-000" in second.continuation_url
    assert third.continuation_state == {"after": out.segments[1].request_id}
    doc = await world.jobs.stage("job-1", Stage.AUDIO)
    assert doc is not None and doc["progress"]["done"] == 3 and doc["progress"]["total"] == 3
    assert doc["scenes"]["2"]["status"] == "done"
    assert doc["scenes"]["2"]["request_id"] == out.segments[2].request_id


async def test_a_crash_while_waiting_on_a_provider_resumes_that_request() -> None:
    world = World(ScriptedProvider(hang_on="scene 1 "))
    event = job()
    # Scene 0 finishes; the process dies while scene 1's request is being waited on.
    first = asyncio.create_task(world.run(event))
    await world.provider.hanging.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(world.provider.submits) == 2
    # Redelivered: scene 0 comes from its checkpoint, scene 1's request is polled again,
    # and only scene 2 is submitted anew.
    world.provider.release.set()
    out = await world.run(event)
    assert len(world.provider.submits) == 3
    assert world.provider.fetches[1] == world.provider.fetches[2]
    assert [s.request_id for s in out.segments] == [
        world.provider.fetches[0], world.provider.fetches[1], world.provider.fetches[3]
    ]  # fmt: skip


async def test_a_failed_scene_becomes_silence_with_its_reason() -> None:
    world = World(ScriptedProvider(fail_prompts={"scene 1 "}))
    out = await world.run(job())
    silent = out.segments[1]
    assert silent.silent_fallback and silent.error is not None
    assert silent.error.code == Code.PROVIDER_FAILED
    assert "GPU" not in silent.error.message  # the provider's words are for operators
    assert abs(world.wav_seconds(silent.s3_key) - 1.5) < 0.001
    samples = world.media.objects[silent.s3_key][44:]
    assert set(samples) == {0}
    assert [s.silent_fallback for s in out.segments] == [False, True, False]
    # Silence continues nothing: the scene after it starts afresh.
    assert world.provider.submits[-1].continuation_state is None


async def test_halt_fails_the_job_with_the_scene_and_the_reason() -> None:
    world = World(ScriptedProvider(fail_prompts={"scene 1 "}))
    with pytest.raises(SceneFailed) as exc:
        await world.run(job(params={"error_strategy": "halt"}))
    assert exc.value.code == Code.PROVIDER_FAILED
    assert exc.value.message.startswith("scene 1: ")
    assert len(world.provider.submits) == 2  # nothing after the failed scene


async def test_a_repeated_job_is_served_from_the_cache_without_a_provider_call() -> None:
    world = World()
    first = await world.run(job(job_id="job-a"))
    second = await world.run(job(job_id="job-b"))
    assert len(world.provider.submits) == 3
    assert all(s.cached for s in second.segments) and not any(s.cached for s in first.segments)
    assert [s.request_id for s in second.segments] == [s.request_id for s in first.segments]
    for a, b in zip(first.segments, second.segments, strict=True):
        assert b.s3_key.startswith("audio/job-b/")
        assert world.media.objects[a.s3_key] == world.media.objects[b.s3_key]
    # Off for one job: generated anew.
    await world.run(job(job_id="job-c", cache=False))
    assert len(world.provider.submits) == 6


async def test_a_changed_scene_misses_the_cache_and_so_does_everything_it_continues() -> None:
    world = World()
    await world.run(job(job_id="job-a"))
    changed = job(job_id="job-b")
    scenes = list(changed.scenes)
    scenes[1] = scenes[1].model_copy(update={"prompt": "scene 1 loud drums"})
    await world.run(changed.model_copy(update={"scenes": scenes}))
    # Scene 0 is reused; 1 changed; 2 continues a different scene 1.
    assert len(world.provider.submits) == 5


async def test_regeneration_writes_a_new_attempt_beside_the_old_one() -> None:
    world = World()
    first = await world.run(job())
    again = await world.run(job(attempt=2, cache=False))
    assert all(s.s3_key.startswith("audio/job-1/a2-") for s in again.segments)
    assert all(s.s3_key in world.media.objects for s in first.segments)
    assert again.attempt == 2


async def test_bad_input_fails_before_any_provider_call() -> None:
    world = World()
    with pytest.raises(InvalidGeneration):
        await world.run(job(model="nope"))
    with pytest.raises(InvalidGeneration):
        await world.run(job(provider="fal"))  # not configured here
    assert world.provider.submits == [] and world.media.objects == {}


async def test_sfx_scenes_run_concurrently_up_to_the_bound() -> None:
    provider = ScriptedProvider(hang_on="scene")
    world = World(provider, concurrency=2)
    task = asyncio.create_task(world.run(job("sfx", n=5)))
    await provider.hanging.wait()
    await asyncio.sleep(0.1)
    assert len(provider.fetches) == 2  # two waiting on the provider, three queued behind
    provider.release.set()
    out = await task
    assert [s.scene_index for s in out.segments] == [0, 1, 2, 3, 4]
    # Concurrent scenes do not continue each other.
    assert all(r.continuation_state is None for r in provider.submits)


async def test_voiceover_scenes_know_their_neighbours_lines() -> None:
    world = World()
    await world.run(job("voiceover"))
    by_text = {r.text: r for r in world.provider.submits}
    middle = by_text["Line 1."]
    assert (middle.previous_text, middle.next_text) == ("Line 0.", "Line 2.")
    assert by_text["Line 0."].previous_text is None
