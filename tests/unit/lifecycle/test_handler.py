"""The lifecycle over an in-memory job book: a production job driven from its request to
its end by its outcomes, in any order, twice, or on two workers at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from schemas import Event
from schemas.audio import AudioFailed, AudioJobSubmitted, AudioRendered, AudioSegment
from schemas.errors import ErrorInfo
from schemas.job import JobCompleted, JobFailed, JobRequested, ProductionJobSpec
from schemas.merge import MergeCompleted, MergeFailed, MergeRequested
from schemas.video import VideoJobSubmitted, VideoRendered
from services.common.obs import trace
from services.lifecycle.handler import LifecycleHandler
from services.lifecycle.plan import Retry
from tests.support.fakes import MemoryEmitter, context_for
from tests.support.lifecycle import MemoryJobBook

ENV: dict[str, Any] = {"tenant_id": "acme", "producer": "tests"}
SCENES = [{"prompt": f"scene {i}", "duration_s": 2.0, "video": f"ingest/acme/s{i}.mp4"}
          for i in range(3)]  # fmt: skip


class World:
    def __init__(self) -> None:
        self.jobs, self.emitter = MemoryJobBook(), MemoryEmitter()
        self.handler = LifecycleHandler(jobs=self.jobs, emitter=self.emitter, video_timeout_s=60)

    async def send(self, event: Event, handler: LifecycleHandler | None = None) -> None:
        await (handler or self.handler)(event, context_for(event, "lifecycle"))

    def emitted(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.emitter.events if isinstance(e, kind)]

    def merges(self, step: str) -> list[MergeRequested]:
        return [m for m in self.emitted(MergeRequested) if m.step == step]


def request(job_id: str = "job-1", **spec: Any) -> JobRequested:
    body: dict[str, Any] = {"prompt": "a calm sea", "scenes": SCENES, **spec}
    return JobRequested(job_id=job_id, spec=ProductionJobSpec.model_validate(body), **ENV)


def merged(step: str, key: str, job_id: str = "job-1") -> MergeCompleted:
    return MergeCompleted(job_id=job_id, s3_key=key, duration_ms=6000, size_bytes=10,
                          step=step, **ENV)  # fmt: skip


def rendered(job_id: str = "job-1", attempt: int = 1, n: int = 3) -> AudioRendered:
    segments = [AudioSegment(scene_index=i, s3_key=f"audio/{job_id}/a{attempt}-scene-00{i}.mp3",
                             duration_s=2.0, provider="local", cached=False,
                             silent_fallback=False) for i in range(n)]  # fmt: skip
    return AudioRendered(job_id=job_id, segments=segments, attempt=attempt, **ENV)


def error(code: str = "provider_failed", message: str = "the provider gave up") -> ErrorInfo:
    return ErrorInfo(code=code, message=message, retryable=False, attempts=1)


async def drive_to_completion(world: World) -> None:
    await world.send(merged("concat", "renders/job-1/video.mp4"))
    await world.send(rendered())
    await world.send(merged("soundtrack-a1", "audio/job-1/a1-soundtrack.mp3"))
    await world.send(merged("mux-v1", "renders/job-1/result-v1.mp4"))


async def test_a_three_scene_job_is_joined_scored_muxed_and_completed_once() -> None:
    world = World()
    await world.send(request())
    (concat,) = world.merges("concat")
    assert concat.operation == "concat_video" and concat.inputs == [s["video"] for s in SCENES]
    (audio,) = world.emitted(AudioJobSubmitted)
    assert [s.duration_s for s in audio.scenes] == [2.0, 2.0, 2.0] and audio.attempt == 1
    assert audio.tier == "basic" and audio.kind == "music"
    await drive_to_completion(world)
    (soundtrack,) = world.merges("soundtrack-a1")
    assert soundtrack.operation == "crossfade_audio" and len(soundtrack.inputs) == 3
    assert soundtrack.params.fade_duration_s == 1.0
    (mux,) = world.merges("mux-v1")
    assert mux.inputs == ["renders/job-1/video.mp4"]
    assert mux.params.audio_key == "audio/job-1/a1-soundtrack.mp3"
    assert mux.params.loudness is not None and mux.params.loudness.integrated_lufs == -16.0
    (done,) = world.emitted(JobCompleted)
    assert done.outputs == {"video": "renders/job-1/video.mp4",
                            "audio": "audio/job-1/a1-soundtrack.mp3",
                            "result": "renders/job-1/result-v1.mp4"}  # fmt: skip
    assert done.audio_status == "COMPLETED" and done.audio_error is None
    job = world.jobs.jobs["job-1"]
    assert job["status"] == "COMPLETED" and world.jobs.outbox("job-1") == []
    # Everything again, in another order: nothing more happens.
    await world.send(merged("mux-v1", "renders/job-1/result-v1.mp4"))
    await world.send(rendered())
    await world.send(request())
    assert len(world.emitted(JobCompleted)) == 1 and len(world.merges("mux-v1")) == 1


async def test_outcomes_in_any_order_reach_the_same_end() -> None:
    world = World()
    await world.send(request())
    await world.send(rendered())
    await world.send(merged("soundtrack-a1", "audio/job-1/a1-soundtrack.mp3"))
    assert world.merges("mux-v1") == []  # the video is not joined yet
    await world.send(merged("concat", "renders/job-1/video.mp4"))
    assert len(world.merges("mux-v1")) == 1
    await world.send(merged("mux-v1", "renders/job-1/result-v1.mp4"))
    assert len(world.emitted(JobCompleted)) == 1


async def test_two_workers_on_the_same_outcomes_advance_the_job_once() -> None:
    world = World()
    other = LifecycleHandler(jobs=world.jobs, emitter=world.emitter, video_timeout_s=60)
    await asyncio.gather(world.send(request()), world.send(request(), other))
    for outcome in (merged("concat", "renders/job-1/video.mp4"), rendered(),
                    merged("soundtrack-a1", "audio/job-1/a1-soundtrack.mp3"),
                    merged("mux-v1", "renders/job-1/result-v1.mp4")):  # fmt: skip
        await asyncio.gather(world.send(outcome), world.send(outcome, other))
    assert len(world.emitted(AudioJobSubmitted)) == 1
    assert [len(world.merges(s)) for s in ("concat", "soundtrack-a1", "mux-v1")] == [1, 1, 1]
    assert len(world.emitted(JobCompleted)) == 1


async def test_audio_that_fails_leaves_the_video_and_says_why() -> None:
    world = World()
    await world.send(request())
    await world.send(AudioFailed(job_id="job-1", error=error(), **ENV))
    await world.send(merged("concat", "renders/job-1/video.mp4"))
    (done,) = world.emitted(JobCompleted)
    assert done.outputs == {"video": "renders/job-1/video.mp4",
                            "result": "renders/job-1/video.mp4"}  # fmt: skip
    assert done.audio_status == "FAILED"
    assert done.audio_error == "Audio generation failed: the provider gave up"
    assert world.merges("mux-v1") == []


async def test_a_failed_mux_still_delivers_the_video() -> None:
    world = World()
    await world.send(request())
    await world.send(merged("concat", "renders/job-1/video.mp4"))
    await world.send(rendered())
    await world.send(merged("soundtrack-a1", "audio/job-1/a1-soundtrack.mp3"))
    await world.send(
        MergeFailed(job_id="job-1", error=error("ffmpeg_failed"), step="mux-v1", **ENV)
    )
    (done,) = world.emitted(JobCompleted)
    assert done.audio_status == "FAILED" and done.outputs["result"] == "renders/job-1/video.mp4"


async def test_a_video_that_cannot_be_joined_fails_the_job() -> None:
    world = World()
    await world.send(request())
    await world.send(MergeFailed(job_id="job-1", error=error("not_media", "input 2 is not a video"),
                                 step="concat", **ENV))  # fmt: skip
    (failed,) = world.emitted(JobFailed)
    assert failed.error.code == "video_failed" and "input 2 is not a video" in failed.error.message
    # Audio arriving later changes nothing.
    await world.send(rendered())
    assert world.merges("soundtrack-a1") == [] and world.emitted(JobCompleted) == []


async def test_one_video_without_audio_completes_at_once() -> None:
    world = World()
    await world.send(request(scenes=[], video="ingest/acme/whole.mp4", feature={"audio": False}))
    (done,) = world.emitted(JobCompleted)
    assert done.outputs == {"video": "ingest/acme/whole.mp4", "result": "ingest/acme/whole.mp4"}
    assert done.audio_status == "NOT_REQUESTED"
    assert world.emitted(AudioJobSubmitted) == [] and world.emitted(MergeRequested) == []


async def test_an_upstream_video_is_asked_for_and_awaited_until_its_deadline() -> None:
    world = World()
    spec = {"scenes": [], "video": {"source": "upstream"}, "duration_seconds": 8,
            "feature": {"audio": False}}  # fmt: skip
    await world.send(request("job-up", **spec))
    (asked,) = world.emitted(VideoJobSubmitted)
    assert (asked.duration_s, asked.width, asked.height) == (8, 1280, 720)
    await world.send(VideoRendered(job_id="job-up", s3_key="renders/up.mp4", duration_s=8,
                                   width=1280, height=720, codec="h264", **ENV))  # fmt: skip
    assert world.emitted(JobCompleted)[0].outputs["video"] == "renders/up.mp4"

    await world.send(request("job-late", **spec))
    world.handler._video_timeout = world.handler._video_timeout * 0
    assert await world.handler.expire_videos() == 1
    (failed,) = world.emitted(JobFailed)
    assert failed.job_id == "job-late" and "did not arrive" in failed.error.message


async def test_a_voiceover_is_its_own_audio_job_mixed_under_the_music() -> None:
    world = World()
    scenes = [{**s, "text": f"Line {i}."} for i, s in enumerate(SCENES)]
    await world.send(request(scenes=scenes, feature={"voiceover": True}))
    _music, voice = world.emitted(AudioJobSubmitted)
    assert voice.job_id == "job-1.vo" and voice.kind == "voiceover"
    assert [s.text for s in voice.scenes] == ["Line 0.", "Line 1.", "Line 2."]
    await world.send(merged("concat", "renders/job-1/video.mp4"))
    await world.send(rendered())
    await world.send(merged("soundtrack-a1", "audio/job-1/a1-soundtrack.mp3"))
    assert world.merges("mux-v1") == []  # waits for the voice
    await world.send(rendered("job-1.vo"))
    (track,) = world.merges("voicetrack-a1")
    assert track.params.fade_duration_s == 0.0
    await world.send(merged("voicetrack-a1", "audio/job-1/a1-voiceover.mp3"))
    (mux,) = world.merges("mux-v1")
    assert mux.params.voiceover_key == "audio/job-1/a1-voiceover.mp3"


async def test_a_retry_of_the_audio_makes_a_new_version_without_touching_the_video() -> None:
    world = World()
    await world.send(request())
    await drive_to_completion(world)
    # What the API's retry?stage=audio does to the job, then the nudge it sends.
    await world.jobs.record("job-1", Retry(2), "retry-a2")
    await world.jobs.set_summary("job-1", {"status": "RUNNING"})
    await world.send(request())
    assert [a.attempt for a in world.emitted(AudioJobSubmitted)] == [1, 2]
    await world.send(rendered(attempt=1))  # the old attempt's late duplicate: ignored
    assert world.merges("soundtrack-a2") == []
    await world.send(rendered(attempt=2))
    await world.send(merged("soundtrack-a2", "audio/job-1/a2-soundtrack.mp3"))
    (mux,) = world.merges("mux-v2")
    assert mux.inputs == ["renders/job-1/video.mp4"]  # the same joined video
    await world.send(merged("mux-v2", "renders/job-1/result-v2.mp4"))
    first, second = world.emitted(JobCompleted)
    assert (first.version, second.version) == (1, 2)
    assert second.outputs["result"] == "renders/job-1/result-v2.mp4"
    assert len(world.merges("concat")) == 1


async def test_an_event_claimed_by_a_worker_that_died_is_sent_again() -> None:
    world = World()
    world.emitter.fail_emits = 1
    with pytest.raises(ConnectionError):
        await world.send(request())
    assert world.emitter.events == []
    assert world.jobs.outbox("job-1")  # claimed, never confirmed
    assert await world.handler.relay(0) >= 1
    names = [m.step for m in world.emitted(MergeRequested)]
    assert names == ["concat"]
    # The redelivered request finds the claims taken and sends the rest.
    await world.send(request())
    assert len(world.emitted(AudioJobSubmitted)) == 1 and len(world.merges("concat")) == 1


async def test_outcomes_of_jobs_it_does_not_drive_are_ignored() -> None:
    world = World()
    await world.send(rendered("someone-elses-audio-job"))
    assert world.emitter.events == []


class TracingEmitter(MemoryEmitter):
    """Notes the trace each event was emitted in (what its Kafka header would say)."""

    def __init__(self) -> None:
        super().__init__()
        self.traces: list[str | None] = []

    async def emit(self, events: Sequence[Event]) -> None:
        await super().emit(events)
        self.traces.extend(trace.current_trace_id() for _ in events)


async def test_what_a_timer_sends_for_a_job_joins_the_jobs_trace() -> None:
    jobs, emitter = MemoryJobBook(), TracingEmitter()
    handler = LifecycleHandler(jobs=jobs, emitter=emitter, video_timeout_s=0)
    submitted = trace.start(None)
    emitter.fail_emits = 1
    with trace.use(submitted), pytest.raises(ConnectionError):
        await handler(request(), context_for(request(), "lifecycle"))
    upstream = request("job-2", video={"source": "upstream"}, scenes=[], duration_seconds=2)
    with trace.use(trace.start(None)) as other:
        await handler(upstream, context_for(upstream, "lifecycle"))
    job = await jobs.get("job-1")
    assert job is not None and job["trace_id"] == submitted.trace_id
    before = len(emitter.traces)
    assert before and set(emitter.traces) == {other.trace_id}

    # The outbox relay and the overdue-video sweep run outside any trace, from a timer.
    assert await handler.relay(0) >= 1
    resent = len(emitter.traces)
    assert resent > before and set(emitter.traces[before:]) == {submitted.trace_id}
    await asyncio.sleep(0.01)
    assert await handler.expire_videos() == 1
    assert len(emitter.traces) > resent and set(emitter.traces[resent:]) == {other.trace_id}
    assert trace.current() is None
